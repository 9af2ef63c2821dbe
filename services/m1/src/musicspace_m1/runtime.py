"""Process-wide state of the m1 service: the catalog index, loaded models, a CPU pool.

The catalog index is built at startup and rebuilt in the background when the tracks change
(a count/max(updated_at) check every `catalog_refresh_s`), in a low-priority worker process;
requests always use the latest complete index, never wait for a rebuild. CPU work runs in a small thread pool sized to the
cores, with BLAS/OpenMP limited to one thread per call so concurrent requests don't
oversubscribe the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from threadpoolctl import threadpool_limits

from musicspace_m1 import global_model as _loads_sklearn  # noqa: F401 - OpenMP must be loaded to limit it
from musicspace_m1 import repository
from musicspace_m1.catalog_index import CatalogIndex, build_catalog_index
from musicspace_m1.hybrid import GlobalModel, Ranked
from musicspace_m1.settings import Settings
from musicspace_m1.store import ModelCache
from musicspace_shared.db.engine import standalone_session
from musicspace_shared.model_store import ModelMeta
from musicspace_shared.offload import ProcessOffload

logger = logging.getLogger("musicspace.m1")
T = TypeVar("T")
V = TypeVar("V")


class LruCache(Generic[V]):
    """A small thread-safe LRU map (size 0 disables it)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


class Runtime:
    def __init__(self, settings: Settings, *, metrics: Any = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.models = ModelCache(
            settings.model_dir("M1"),
            on_failure=(lambda: metrics.count("model_load_failures")) if metrics else lambda: None,
        )
        workers = settings.cpu_workers or max(1, min(4, os.cpu_count() or 1))
        self.executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="m1-cpu", initializer=_limit_threads
        )
        self.index: CatalogIndex | None = None
        self.catalog_signature: tuple[int, str] | None = None
        self._generation = 0
        self._refresh_lock = asyncio.Lock()
        self.rebuilds = ProcessOffload()
        self.ranked_cache: LruCache[Ranked] = LruCache(settings.ranked_cache_size)
        self.response_cache: LruCache[Any] = LruCache(settings.ranked_cache_size)

    async def run_cpu(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run CPU-bound work off the event loop, in the bounded pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: func(*args, **kwargs))

    async def refresh_catalog(
        self, maker: async_sessionmaker[AsyncSession], *, force: bool = False
    ) -> bool:
        """Rebuild the index if the tracks changed; True when a new index was installed.

        The check is one aggregate query; the rebuild (read 28k rows, build) runs in the
        low-priority worker process (musicspace_shared.offload), not beside the requests."""
        async with self._refresh_lock:
            async with maker() as session:
                signature = await repository.catalog_version(session)
            if not force and signature == self.catalog_signature and self.index is not None:
                return False
            index, signature = await self.rebuilds.run(load_catalog_index, self.settings)
            frame = index.frame
            self._generation += 1
            index.generation = self._generation
            self.index = index
            self.catalog_signature = signature
            if self.metrics is not None:
                self.metrics.count("catalog_rebuilds")
            logger.info("catalog index built: %d tracks", len(frame))
            return True

    async def global_model(self) -> tuple[GlobalModel, ModelMeta] | None:
        return await self.run_cpu(self.models.global_model)

    @contextlib.asynccontextmanager
    async def running(self, maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[Runtime]:
        """Lifespan: first index and model load, then a background refresh loop."""
        try:
            await self.refresh_catalog(maker, force=True)
        except Exception:  # noqa: BLE001 - a DB down at start: readiness reports it, the loop retries
            logger.exception("initial catalog load failed")
        with contextlib.suppress(Exception):
            await self.global_model()
        task = asyncio.create_task(self._refresh_loop(maker))
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.rebuilds.close()

    async def _refresh_loop(self, maker: async_sessionmaker[AsyncSession]) -> None:
        while True:
            await asyncio.sleep(self.settings.catalog_refresh_s)
            try:
                await self.refresh_catalog(maker)
            except Exception:  # noqa: BLE001 - keep serving the last index; retry next round
                logger.warning("catalog refresh failed", exc_info=True)


def load_catalog_index(settings: Settings) -> tuple[CatalogIndex, tuple[int, str]]:
    """In the rebuild worker: the catalog's version and its index, read from the DB."""
    return asyncio.run(_load_catalog_index(settings))


async def _load_catalog_index(settings: Settings) -> tuple[CatalogIndex, tuple[int, str]]:
    async with standalone_session(settings) as session:
        # Version first: a change landing during the read is seen again at the next check.
        signature = await repository.catalog_version(session)
        frame = await repository.catalog(session)
    return build_catalog_index(frame), signature


def _limit_threads() -> None:
    # One OpenMP/BLAS thread per call: requests already run in parallel in the pool. OpenMP's
    # thread count is per calling thread, so each pool thread sets its own at start.
    threadpool_limits(limits=1)
