"""The hang report names the await a stuck task is suspended in."""

from __future__ import annotations

import asyncio
import gc
import io

from tests.hang_report import report_tasks


async def _waits_forever(event: asyncio.Event) -> None:
    await event.wait()


async def test_report_shows_where_a_pending_task_waits():
    event = asyncio.Event()
    task = asyncio.create_task(_waits_forever(event))
    await asyncio.sleep(0)
    out = io.StringIO()
    report_tasks("some::test", out)
    event.set()
    await task
    text = out.getvalue()
    assert "some::test still running" in text
    assert "_waits_forever" in text and "await event.wait()" in text


async def test_report_finds_the_loop_after_a_gc_freeze():
    """A service under test may gc.freeze() (musicspace_shared.heap): the loop, frozen with
    everything else, is no longer in gc.get_objects()."""
    gc.freeze()
    try:
        await test_report_shows_where_a_pending_task_waits()
    finally:
        gc.unfreeze()
