"""The heap guard: settle() freezes what startup built; watch() counts full collections and
freezes after a slow one that freed (almost) nothing."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from musicspace_shared import heap


class Counts:
    def __init__(self) -> None:
        self.events: dict[str, float] = {}

    def count(self, event: str, amount: float = 1) -> None:
        self.events[event] = self.events.get(event, 0) + amount


@pytest.fixture
def clean_gc() -> Iterator[None]:
    callbacks = list(gc.callbacks)
    yield
    gc.callbacks[:] = callbacks
    gc.unfreeze()


def test_settle_moves_the_survivors_out_of_the_collectors_reach(clean_gc: None) -> None:
    gc.unfreeze()
    long_lived = [[i] for i in range(10_000)]
    heap.settle()
    assert gc.get_freeze_count() >= len(long_lived)


def test_a_slow_full_collection_that_frees_nothing_freezes_the_heap(
    clean_gc: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    gc.unfreeze()
    counts = Counts()
    heap.watch(counts)
    heap.watch(counts)  # one watcher per process, however many apps are built
    assert sum(isinstance(cb, heap._FullCollectionWatch) for cb in gc.callbacks) == 1
    monkeypatch.setattr(heap, "SLOW_MS", 0.0)
    kept = [[i] for i in range(10_000)]
    gc.collect()
    assert counts.events["gc_full_collections"] >= 1
    assert counts.events["gc_full_ms"] > 0
    assert counts.events["gc_freezes"] >= 1
    assert gc.get_freeze_count() >= len(kept)


def test_a_collection_that_frees_garbage_does_not_freeze(
    clean_gc: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    gc.unfreeze()
    counts = Counts()
    heap.watch(counts)
    monkeypatch.setattr(heap, "SLOW_MS", 0.0)
    gc.disable()  # keep the young collections from freeing the cycles first
    try:
        for _ in range(5_000):  # reference cycles: only the collector frees them
            a: list = []
            a.append(a)
        del a
    finally:
        gc.enable()
    gc.collect()
    assert counts.events["gc_full_collections"] >= 1
    assert "gc_freezes" not in counts.events
    assert gc.get_freeze_count() == 0


def test_resettle_frees_cycles_that_were_frozen(clean_gc: None) -> None:
    import weakref

    class Node:
        def __init__(self) -> None:
            self.me = self  # a reference cycle: only the collector frees it

    gc.unfreeze()
    node = Node()
    alive = weakref.ref(node)
    heap.settle()  # frozen while still in use
    del node
    gc.collect()
    assert alive() is not None, "a frozen cycle is out of the collector's reach"
    heap.resettle()
    assert alive() is None
    assert gc.get_freeze_count() > 0


async def test_resettle_every_runs_until_cancelled(
    clean_gc: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    calls: list[int] = []
    monkeypatch.setattr(heap, "resettle", lambda: calls.append(1))
    task = asyncio.create_task(heap.resettle_every(0.01))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(calls) >= 3


def test_the_collector_is_paused_until_the_last_overlapping_build_ends() -> None:
    assert gc.isenabled()
    outer = heap.collector_paused()
    outer.__enter__()
    with heap.collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()  # the outer build still runs
    outer.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_collector_off_before_the_pause_stays_off() -> None:
    gc.disable()
    try:
        with heap.collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
