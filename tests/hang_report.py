"""A test that runs too long prints where every asyncio task is waiting.

faulthandler_timeout (pyproject) prints the threads' stacks, which for a hung async test shows
only an idle event loop. This prints, after HANG_REPORT_S, each pending task of every running
event loop with the frames it is suspended in: the await that never returns. It does not stop
the test.
"""

from __future__ import annotations

import asyncio
import gc
import io
import sys
import threading
from collections.abc import Iterator

import pytest

HANG_REPORT_S = 300.0


def _running_loops() -> list[asyncio.AbstractEventLoop]:
    return [
        obj
        for obj in gc.get_objects()
        if isinstance(obj, asyncio.AbstractEventLoop) and obj.is_running()
    ]


def report_tasks(test_id: str, out: io.TextIOBase | None = None) -> None:
    out = out or sys.stderr
    print(f"\n=== {test_id} still running after {HANG_REPORT_S:.0f} s: asyncio tasks ===", file=out)
    for loop in _running_loops():
        for task in list(asyncio.all_tasks(loop)):
            print(f"--- {task!r}", file=out)
            task.print_stack(limit=30, file=out)
    out.flush()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    timer = threading.Timer(HANG_REPORT_S, report_tasks, args=(item.nodeid,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
