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
import os
import sys
import threading
import weakref
from collections.abc import Iterator

import pytest
from _pytest.faulthandler import fault_handler_stderr_fd_key

HANG_REPORT_S = float(os.environ.get("HANG_REPORT_S", 300))  # seconds


# The event loops tests run on: recorded by a session fixture (the session's loop). Found by
# gc as well, but a service under test may gc.freeze() (musicspace_shared.heap), which hides
# every object alive then, the loop included, from gc.get_objects().
_LOOPS: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


@pytest.fixture(scope="session", autouse=True)
async def _record_session_loop() -> None:
    _LOOPS.add(asyncio.get_running_loop())


def _running_loops() -> list[asyncio.AbstractEventLoop]:
    found = {*_LOOPS, *(o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop))}
    return [loop for loop in found if loop.is_running()]


def report_tasks(test_id: str, out: io.TextIOBase | None = None) -> None:
    out = out or sys.stderr
    print(tasks_text(test_id), file=out)
    out.flush()


def tasks_text(test_id: str) -> str:
    out = io.StringIO()
    print(f"\n=== {test_id} still running after {HANG_REPORT_S:.0f} s: asyncio tasks ===", file=out)
    for loop in _running_loops():
        for task in list(asyncio.all_tasks(loop)):
            print(f"--- {task!r}", file=out)
            task.print_stack(limit=30, file=out)
    return out.getvalue()


def _to_terminal(config: pytest.Config, test_id: str) -> None:
    """The report on the stream faulthandler writes to: pytest captures sys.stderr (and fd 2)
    while a test runs, so a report printed there showed only once the hung test ended: never."""
    fd = config.stash.get(fault_handler_stderr_fd_key, None)
    if fd is None:
        report_tasks(test_id, sys.__stderr__)
        return
    os.write(fd, tasks_text(test_id).encode(errors="replace"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    timer = threading.Timer(HANG_REPORT_S, _to_terminal, args=(item.config, item.nodeid))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
