"""The CPU pool of a service: CPU-bound work (scoring, training) off the event loop.

A small thread pool sized to the cores, with BLAS/OpenMP limited to one thread per call: the
requests already run in parallel in the pool, so a library that also spread each call over
every core would oversubscribe the machine. OpenMP's thread count is per calling thread, so
each pool thread sets its own at start, and only for the libraries loaded by then: import
the model libraries before building the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from threadpoolctl import threadpool_limits

T = TypeVar("T")


def _one_thread_per_call(niceness: int = 0) -> None:
    threadpool_limits(limits=1)
    if niceness:
        # Linux schedules threads as tasks: this thread's priority only, not the process'.
        with contextlib.suppress(OSError, AttributeError):
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + niceness)


class CpuPool:
    """A bounded thread pool; `await pool.run(func, *args)` runs func in it."""

    def __init__(self, workers: int = 0, *, name: str, niceness: int = 0) -> None:
        """workers 0: one per core, at most 4. niceness > 0: the pool's threads run at a lower
        OS priority than the rest of the process (background work: requests first)."""
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self.executor = ThreadPoolExecutor(
            max_workers=self.workers,
            thread_name_prefix=f"{name}-cpu",
            initializer=_one_thread_per_call,
            initargs=(niceness,),
        )

    async def run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, partial(func, *args, **kwargs))

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
