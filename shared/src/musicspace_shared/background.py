"""Per-key work taken off the request path: a bounded queue that callers never wait on.

A request that finds something to build for its user (m2's first visit: the user's SVM) gives
its answer from what is there and submits the build here. At most `limit` keys wait; a key
that is already waiting is not added twice (its newest work replaces the older one, keeping
its place); beyond the limit the key is dropped, and the user's next request submits it
again. `workers` tasks run the waiting work in order of arrival. Counted, per `name`:
`<name>_queued`, `<name>_dropped`, `<name>_done` (every run, whatever its outcome), of which
`<name>_failed` and `<name>_cancelled` (events), and `<name>_waiting` (a gauge); the work
counts what it made. Queued minus done is what waits or runs.

One process, one queue: with `--scale m2=3` each replica has its own, and the work must be
safe to run twice for one key (two replicas, or a new submit while the key runs): building a
model that is already current should be a cheap no-op. `forget(key)` (a user's erasure,
musicspace_shared.forget) drops the key's waiting work and cancels its running work at its
next await, so work that publishes should publish after its last CPU step, in one short step.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Literal

from musicspace_shared.logs import log_fields
from musicspace_shared.metrics import ServiceMetrics

logger = logging.getLogger("musicspace.background")
Submitted = Literal["queued", "replaced", "dropped"]
Work = Callable[[], Awaitable[object]]


class BackgroundQueue:
    """At most `limit` keys waiting; `workers` tasks run them in order; callers never wait."""

    def __init__(
        self,
        *,
        name: str,
        limit: int,
        workers: int = 1,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.name = name
        self.limit = limit
        self.workers = workers
        self.metrics = metrics
        self.done = 0  # work finished (also failed)
        self._waiting: dict[Hashable, Work] = {}  # in order of arrival
        self._running: dict[Hashable, asyncio.Task[object]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False

    def __len__(self) -> int:
        return len(self._waiting)

    def waiting(self, key: Hashable) -> bool:
        return key in self._waiting

    def busy(self, key: Hashable) -> bool:
        """The key's work waits or runs."""
        return key in self._waiting or key in self._running

    def submit(self, key: Hashable, work: Work) -> Submitted:
        """Queue `work` for `key` and return at once: "queued", "replaced" (the key was waiting:
        this work runs in its place) or "dropped" (the queue is full, or stopped)."""
        if key in self._waiting:
            self._waiting[key] = work
            return "replaced"
        if self._stopped or len(self._waiting) >= self.limit:
            self._count("dropped")
            return "dropped"
        self._waiting[key] = work
        self._count("queued")
        self._gauge()
        # A task whose loop has ended is done before its callback leaves the set: not counted.
        if sum(not t.done() for t in self._tasks) < self.workers:
            task = asyncio.get_running_loop().create_task(self._drain(), name=self.name)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return "queued"

    async def idle(self) -> None:
        """Until nothing waits and nothing runs (tests, shutdown)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def forget(self, key: Hashable) -> int:
        """Drop the key's waiting work and cancel its running work; how many were dropped."""
        dropped = int(self._waiting.pop(key, None) is not None)
        running = self._running.get(key)
        if running is not None and not running.done():
            running.cancel()
            dropped += 1
        self._gauge()
        return dropped

    def close(self) -> None:
        """Drop what waits and cancel what runs (shutdown)."""
        self._stopped = True
        self._waiting.clear()
        for task in [*self._tasks, *self._running.values()]:
            task.cancel()

    async def _drain(self) -> None:
        while self._waiting:
            key = next(iter(self._waiting))
            work = self._waiting.pop(key)
            self._gauge()
            # Its own task, so forget(key) cancels this work and not the queue's loop.
            task: asyncio.Task[object] = asyncio.ensure_future(work())
            self._running[key] = task
            try:
                await asyncio.wait({task})
                if task.cancelled():
                    self._count("cancelled")
                elif (exc := task.exception()) is not None:
                    self._count("failed")
                    logger.warning(
                        "background work failed",
                        extra=log_fields(
                            job=self.name, key=str(key), error=f"{type(exc).__name__}: {exc}"[:300]
                        ),
                    )
            finally:
                if self._running.get(key) is task:
                    del self._running[key]
                self.done += 1
                self._count("done")

    def _count(self, what: str) -> None:
        if self.metrics is not None:
            self.metrics.count(f"{self.name}_{what}")

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.set(f"{self.name}_waiting", len(self._waiting))
