"""JSON logs (python-json-logger) with the request id of the request being served.

One line per record: ts, level, logger, msg, service, request_id (while serving a request),
every field passed with `extra=` and, for an exception, exc.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# What a LogRecord already holds: an extra= field of that name makes logging raise.
_RECORD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(_JsonFormatter):
    """python-json-logger's formatter with the project's field names."""

    def __init__(self, service: str) -> None:
        super().__init__(
            ["levelname", "name", "message"],
            rename_fields={
                "levelname": "level",
                "name": "logger",
                "message": "msg",
                "exc_info": "exc",
            },
            static_fields={"service": service},
            # uvicorn's records carry a colour-coded copy of the message: not for JSON.
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],
            json_default=str,
            json_ensure_ascii=False,
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["ts"] = datetime.fromtimestamp(record.created, UTC).isoformat(
            timespec="milliseconds"
        )
        super().add_fields(log_data, record, message_dict)
        log_data["level"] = record.levelname.lower()
        request_id = request_id_var.get()
        if request_id:
            log_data["request_id"] = request_id


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Our middleware logs each request with its id; uvicorn's access log would repeat it.
    logging.getLogger("uvicorn.access").disabled = True


def log_fields(**fields: object) -> dict[str, object]:
    """extra= for a log call: logger.info("trained", extra=log_fields(user_id=1)).

    The same as extra={"user_id": 1}, except that a name the log record itself uses (name,
    msg, module, ...), which logging refuses, is logged with a trailing underscore."""
    return {f"{key}_" if key in _RECORD_ATTRS else key: value for key, value in fields.items()}
