"""run_forked: the work runs in a child of this process, on a copy of its heap."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from musicspace_shared.forked import run_forked


def test_the_work_runs_in_a_child_that_reads_the_heap_and_writes_files(tmp_path: Path) -> None:
    heap = {"rows": list(range(1000))}
    out = tmp_path / "out.txt"

    def work() -> bool:
        heap["rows"].append(-1)  # the child's copy: the parent's list stays as it was
        out.write_text(f"{os.getpid()} {sum(heap['rows'])}")
        return True

    assert run_forked(work) is True
    pid, total = out.read_text().split()
    assert int(pid) != os.getpid()
    assert int(total) == sum(range(1000)) - 1
    assert heap["rows"] == list(range(1000))


def test_a_false_result_comes_back_false() -> None:
    assert run_forked(lambda: False) is False


def test_work_that_raises_is_false_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    def work() -> bool:
        raise OSError("volume full")

    with caplog.at_level(logging.WARNING, logger="musicspace.forked"):
        assert run_forked(work) is False
    assert any("forked work failed" in r.getMessage() for r in caplog.records)
    assert run_forked(lambda: True) is True  # the parent carries on
