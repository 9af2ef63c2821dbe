"""Keep CPython's cyclic garbage collector from stalling requests.

A service holds a large heap that lives as long as the process: catalog frames, indexes and
models, hundreds of thousands of objects. CPython's oldest-generation collection walks all of
them. Measured in m1 under 16 concurrent clients: a 110 ms full collection every 1.5 s that
freed nothing and held every request in flight (p99 135 ms against a p50 of 25 ms).

`settle()` (after startup) collects once and then freezes the survivors: the collector skips
frozen objects from then on; reference counting still frees them. Objects built later (a
refreshed catalog, a reloaded model) are frozen the same way after the first slow collection
that finds them, by `watch()`. Both are counted in the service metrics (gc_full_collections,
gc_full_ms, gc_freezes), so /metrics shows whether pauses come back. A frozen object that
later becomes part of unreachable reference cycle would never be collected, so
`resettle_every()` thaws, collects and freezes again now and then (one full pause, ~0.1 s,
every HEAP_RESETTLE_S seconds, 600 by default).
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

# A full collection slower than this that frees fewer objects than FREEZE_MAX_COLLECTED is
# walking long-lived data: freeze what survived.
SLOW_MS = 20.0
FREEZE_MAX_COLLECTED = 1000


class _Counter(Protocol):
    def count(self, event: str, amount: float = 1) -> None: ...


def settle() -> None:
    """Collect what startup left behind, then exempt every surviving object from the collector."""
    gc.collect()
    gc.freeze()


def resettle() -> None:
    """Thaw the frozen heap, free what became garbage since, freeze the survivors again."""
    gc.unfreeze()
    settle()


async def resettle_every(interval_s: float) -> None:
    """Run `resettle()` every `interval_s` seconds until cancelled (a lifespan task)."""
    while True:
        await asyncio.sleep(interval_s)
        resettle()


class _FullCollectionWatch:
    def __init__(self, metrics: _Counter | None) -> None:
        self.metrics = metrics
        self.started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self.started = time.perf_counter()
            return
        elapsed_ms = (time.perf_counter() - self.started) * 1000
        if self.metrics is not None:
            self.metrics.count("gc_full_collections")
            self.metrics.count("gc_full_ms", elapsed_ms)
        if elapsed_ms >= SLOW_MS and info.get("collected", 0) < FREEZE_MAX_COLLECTED:
            gc.freeze()  # the collection is over: its survivors are long-lived
            if self.metrics is not None:
                self.metrics.count("gc_freezes")


def watch(metrics: _Counter | None = None) -> None:
    """Count full collections and freeze the heap after a slow one that freed (almost) nothing.

    One watcher per process: a new app (tests build several) replaces the previous one."""
    gc.callbacks[:] = [cb for cb in gc.callbacks if not isinstance(cb, _FullCollectionWatch)]
    gc.callbacks.append(_FullCollectionWatch(metrics))


class _Pauses:
    """How many builds have the collector paused, and whether it ran before the first."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.was_enabled = True


_pauses = _Pauses()


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic collection while a build makes millions of containers that all survive (the
    llm's name indexes at 1M tracks: 20 of their 50 s went to collections that freed nothing).
    Process-wide, for every thread; reference counting still frees everything else, and the
    collector runs as before once the last paused build ends."""
    with _pauses.lock:
        if _pauses.count == 0:
            _pauses.was_enabled = gc.isenabled()
            gc.disable()
        _pauses.count += 1
    try:
        yield
    finally:
        with _pauses.lock:
            _pauses.count -= 1
            if _pauses.count == 0 and _pauses.was_enabled:
                gc.enable()


def release_free_memory() -> None:
    """Give the C allocator's free pages back to the system after a large build or swap.

    glibc keeps what a build allocated and freed (m2's TF-IDF fits, the catalog rows read): on
    the 100k-track scale set m2's first space build grew the process by 256 MB, of which
    malloc_trim gave back 83 MB; a rebuild's old space stays mapped the same way.
    Not glibc: nothing to do."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
