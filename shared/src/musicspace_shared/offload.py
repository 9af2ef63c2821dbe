"""Heavy rebuilds in a worker process at low CPU priority, so requests keep the CPU.

A catalog rebuild inside the serving process (reading 28k rows, building the index: 0.3 to
0.8 s of Python per service on the demo catalog) shares the interpreter lock with every
request, and on a busy machine the CPU too: requests during a rebuild took 5 to 12 times
their idle p99 (bench/bench_sync.py). In a worker process the rebuild holds no lock the
requests need, and at nice 10 the OS runs the serving processes first; only the result is
unpickled here, in a background thread.

One worker per service, started on first use ("spawn": a clean interpreter, no copy of the
serving process' threads or sockets) and reused, so it can keep state between runs (e.g. the
last catalog index, to rebuild only what changed). A service whose build leaves a large heap
behind asks for a fresh worker for each run instead (`fresh_worker_each_run`): the worker
exits once its result is sent, and gives all of its memory back (m2 at 1M tracks: a worker
kept after its rebuild rested at about 1 GB, mostly the build's freed but unreturned heap);
what it keeps for the next run goes to a file (musicspace_shared.packing.PackedFile). The
result comes back packed (musicspace_shared.packing) and is unpacked in a thread, in steps
short enough that the event loop is never held for long. The function must be importable at
module level and its arguments and result picklable; a worker that dies is replaced on the next run.
A worker whose service is gone (killed, or exited before it could stop the pool) exits within a
second: it would otherwise wait on its pipe forever, holding the catalog's memory.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import Any, TypeVar, overload

from musicspace_shared.heap import release_free_memory
from musicspace_shared.packing import Packed, pack, unpack

T = TypeVar("T")
WORKER_NICENESS = 10
PARENT_CHECK_S = 0.5


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)  # the service is gone: nobody will read a result


def _worker_start() -> None:
    threading.Thread(
        target=_exit_with_parent, args=(os.getppid(),), name="parent-watch", daemon=True
    ).start()
    os.nice(WORKER_NICENESS)  # requests first: the rebuild may take longer, nobody waits on it
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # a service without BLAS-backed libraries
        return
    threadpool_limits(limits=1)  # one core's worth, like the serving pools


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` for a worker function that returns something large (a catalog index).

    Python 3.11's asyncio.run, restoring its SIGINT handler, formats a repr of the finished
    task, and so of its result: 60 ms of m2's rebuild went to printing the content space.
    The result is kept outside the task instead."""
    box: list[T] = []

    async def keep() -> None:
        box.append(await coro)

    asyncio.run(keep())
    return box[0]


def _call_packed(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    result = func(*args, **kwargs)
    packed = result.data if isinstance(result, Packed) else pack(result)
    del result  # a result the worker does not keep is freed here, and its pages given back
    release_free_memory()
    return packed


class ProcessOffload:
    """Runs picklable functions in one worker process: long-lived, or a fresh one each run."""

    def __init__(self, *, fresh_worker_each_run: bool = False) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._tasks_per_worker = 1 if fresh_worker_each_run else None

    @overload
    async def run(self, func: Callable[..., Packed[T]], *args: Any, **kwargs: Any) -> T: ...

    @overload
    async def run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...

    async def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """func(*args, **kwargs) in the worker; its result (sent packed: a Packed one as it is)."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_start,
                max_tasks_per_child=self._tasks_per_worker,
            )
        loop = asyncio.get_running_loop()
        try:
            packed = await loop.run_in_executor(
                self._pool, partial(_call_packed, func, args, kwargs)
            )
        except BrokenProcessPool:
            self.close()  # the worker died (e.g. killed for memory): a new one next time
            raise
        return await asyncio.to_thread(unpack, packed)

    def close(self) -> None:
        """Stop the worker now, even mid-rebuild: nobody will read that result, and a worker
        left to finish (at nice 10, on a busy machine) held its memory and its executor's
        manager thread for as long as the rebuild took."""
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        workers = list((pool._processes or {}).values())  # noqa: SLF001 - no public handle
        pool.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
