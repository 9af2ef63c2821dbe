"""JSON log lines keep every field a log call passes, whichever way it passes them."""

from __future__ import annotations

import json
import logging
import sys

from musicspace_shared.logs import JsonFormatter, log_fields, request_id_var


def _line(record_extra: dict | None = None, *, exc: bool = False) -> dict:
    logger = logging.getLogger("musicspace.test")
    record = logger.makeRecord(
        "musicspace.test",
        logging.INFO,
        __file__,
        1,
        "model %s",
        ("loaded",),
        None,
        extra=record_extra,
    )
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            record.exc_info = sys.exc_info()
    return json.loads(JsonFormatter("m2").format(record))


def test_plain_extra_fields_are_kept() -> None:
    line = _line({"version": "2026-12-01", "user_id": 7})
    assert line["version"] == "2026-12-01" and line["user_id"] == 7
    assert line["msg"] == "model loaded"
    assert line["level"] == "info" and line["logger"] == "musicspace.test"
    assert line["service"] == "m2" and line["ts"].endswith("+00:00")


def test_log_fields_are_kept_flat_and_a_record_name_is_not_refused() -> None:
    line = _line(log_fields(job_id="j1", module="m1", name="x"))
    assert (line["job_id"], line["module_"], line["name_"]) == ("j1", "m1", "x")
    assert "fields" not in line and "module" not in line


def test_values_json_cannot_encode_are_logged_as_text_and_uvicorn_colours_dropped() -> None:
    line = _line({"path": object, "color_message": "\x1b[1mmodel\x1b[0m"})
    assert line["path"] == str(object)
    assert "color_message" not in line


def test_request_id_and_exception_are_logged() -> None:
    token = request_id_var.set("req-1")
    try:
        line = _line(exc=True)
    finally:
        request_id_var.reset(token)
    assert line["request_id"] == "req-1"
    assert "ValueError: boom" in line["exc"]
    assert "request_id" not in _line()
