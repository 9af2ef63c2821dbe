"""Bounded work: a rate limit per credential and a coalescing training queue per service.

Both live in one process: with `--scale m1=3` each replica keeps its own buckets and queue,
so the limits a client meets are per replica (documented in the README).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from musicspace_shared.errors import TooManyRequests

T = TypeVar("T")


class RateLimiter:
    """Token buckets by key: `per_s` tokens a second, at most `burst` saved up.

    At most `max_keys` buckets are kept (least recently used dropped first), so a client
    cycling through credentials cannot grow the process; a dropped bucket starts full again.
    """

    def __init__(self, *, per_s: float, burst: int, max_keys: int = 100_000) -> None:
        self.per_s = per_s
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    def take(self, key: Hashable, *, now: float | None = None) -> None:
        """Spend one token of `key`'s bucket, or raise TooManyRequests with the wait."""
        if self.per_s <= 0:
            return
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.per_s)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            raise TooManyRequests(
                f"rate limit: {self.per_s:g} requests/s (bursts of {self.burst}) per credential",
                retry_after_s=(1.0 - tokens) / self.per_s,
            )
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)


class TrainingQueue:
    """Training runs for at most `limit` distinct users at once (running or waiting for a
    worker); a second request for a user already in it joins that training and gets the same
    answer. Beyond the limit: TooManyRequests with a Retry-After from recent durations.

    The work runs as its own task, so a caller that disconnects neither cancels it for the
    others nor leaves it half done; `work` must therefore not use the caller's DB session.
    """

    def __init__(self, *, limit: int, what: str = "training") -> None:
        self.limit = limit
        self.what = what
        self._running: dict[Hashable, asyncio.Future[Any]] = {}
        self._mean_s = 2.0  # a moving mean of durations, for Retry-After

    def __len__(self) -> int:
        return len(self._running)

    async def run(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> T:
        task = self._running.get(key)
        if task is None:
            if len(self._running) >= self.limit:
                raise TooManyRequests(
                    f"{self.what} queue is full ({self.limit} users at once); retry later",
                    retry_after_s=self._mean_s,
                )
            task = asyncio.ensure_future(self._timed(work))
            self._running[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task)

    async def _timed(self, work: Callable[[], Awaitable[T]]) -> T:
        started = time.monotonic()
        try:
            return await work()
        finally:
            self._mean_s = 0.8 * self._mean_s + 0.2 * (time.monotonic() - started)

    def _finished(self, key: Hashable, task: asyncio.Future[Any]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            task.exception()  # retrieved: every caller may have gone, the error is theirs
