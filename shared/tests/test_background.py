"""Background work per key: bounded, deduplicated, in order, callers never wait."""

from __future__ import annotations

import asyncio

from musicspace_shared.background import BackgroundQueue
from musicspace_shared.metrics import ServiceMetrics


class Gate:
    """Work that records its key and waits to be let through."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.ran: list[str] = []

    def work(self, label: str, *, fail: bool = False):  # type: ignore[no-untyped-def]
        async def run() -> None:
            await self.release.wait()
            self.ran.append(label)
            if fail:
                raise RuntimeError("boom")

        return run


def events(metrics: ServiceMetrics, name: str) -> float:
    return metrics.events.labels("test", name)._value.get()  # type: ignore[no-any-return]


async def test_submit_returns_at_once_and_runs_each_key_once_in_order_of_arrival() -> None:
    metrics = ServiceMetrics("test")
    gate, queue = Gate(), BackgroundQueue(name="job", limit=10, metrics=metrics)
    assert queue.submit(1, gate.work("1a")) == "queued"
    await asyncio.sleep(0)  # 1 starts (and waits at the gate)
    assert queue.submit(2, gate.work("2a")) == "queued"
    assert queue.submit(3, gate.work("3")) == "queued"
    # A waiting key takes the newest work in its place; a running key may wait once more.
    assert queue.submit(2, gate.work("2b")) == "replaced"
    assert queue.submit(1, gate.work("1b")) == "queued"
    assert len(queue) == 3 and queue.busy(1) and queue.waiting(2) and not queue.busy(4)
    gate.release.set()
    await queue.idle()
    assert gate.ran == ["1a", "2b", "3", "1b"]
    assert events(metrics, "job_queued") == 4 and events(metrics, "job_done") == 4
    assert metrics.gauges.labels("test", "job_waiting")._value.get() == 0


async def test_a_full_queue_drops_the_key_and_counts_it() -> None:
    metrics = ServiceMetrics("test")
    gate, queue = Gate(), BackgroundQueue(name="job", limit=1, metrics=metrics)
    queue.submit(1, gate.work("1"))
    await asyncio.sleep(0)  # running: not waiting
    assert queue.submit(2, gate.work("2")) == "queued"
    assert queue.submit(3, gate.work("3")) == "dropped"
    assert events(metrics, "job_dropped") == 1
    gate.release.set()
    await queue.idle()
    assert gate.ran == ["1", "2"]
    # Drained: the next submit starts a new run.
    assert queue.submit(3, gate.work("3")) == "queued"
    await queue.idle()
    assert gate.ran == ["1", "2", "3"]


async def test_failed_work_is_counted_and_the_queue_goes_on() -> None:
    metrics = ServiceMetrics("test")
    gate, queue = Gate(), BackgroundQueue(name="job", limit=5, metrics=metrics)
    gate.release.set()
    queue.submit(1, gate.work("1", fail=True))
    queue.submit(2, gate.work("2"))
    await queue.idle()
    assert gate.ran == ["1", "2"] and events(metrics, "job_failed") == 1


async def test_forget_drops_waiting_work_and_cancels_running_work() -> None:
    metrics = ServiceMetrics("test")
    gate, queue = Gate(), BackgroundQueue(name="job", limit=5, metrics=metrics)
    queue.submit(1, gate.work("1"))
    queue.submit(2, gate.work("2"))
    queue.submit(3, gate.work("3"))
    await asyncio.sleep(0)
    assert queue.forget(2) == 1 and queue.forget(1) == 1 and queue.forget(9) == 0
    gate.release.set()
    await queue.idle()
    assert gate.ran == ["3"] and events(metrics, "job_cancelled") == 1


async def test_close_drops_everything_and_refuses_new_work() -> None:
    gate, queue = Gate(), BackgroundQueue(name="job", limit=5)
    queue.submit(1, gate.work("1"))
    queue.submit(2, gate.work("2"))
    await asyncio.sleep(0)
    queue.close()
    assert queue.submit(3, gate.work("3")) == "dropped"
    gate.release.set()
    await queue.idle()
    assert gate.ran == []
