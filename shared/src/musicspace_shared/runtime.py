"""What every model service (m1, m2, m3) holds while it runs, and how it starts and stops.

A CPU pool for scoring and training off the event loop (musicspace_shared.cpu), a worker
process for rebuilds (musicspace_shared.offload) and a catalog watcher
(musicspace_shared.watch). A service subclasses ServiceRuntime and says only what differs:
what it loads at start, what version of the DB its in-memory catalog follows, and how it
rebuilds it. The lifespan enters `running(sessionmaker)`; the runtime it yields is the one
routes reach through `musicspace_shared.web.runtime_dependency`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Hashable, Iterable
from typing import Any, ClassVar, Self, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from musicspace_shared.catalog import catalog_version
from musicspace_shared.cpu import CpuPool
from musicspace_shared.metrics import ServiceMetrics
from musicspace_shared.offload import ProcessOffload
from musicspace_shared.settings import CommonSettings
from musicspace_shared.watch import CatalogWatcher

T = TypeVar("T")


class ServiceRuntime:
    """A CPU pool, a rebuild worker and a catalog watcher, started and stopped together."""

    name: ClassVar[str]
    # A fresh rebuild worker for each rebuild (musicspace_shared.offload): for a service whose
    # worker would otherwise rest on the heap its last build left behind.
    fresh_rebuild_worker: ClassVar[bool] = False

    def __init__(self, settings: CommonSettings, *, metrics: ServiceMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics  # the app's ServiceMetrics (None in tools)
        self.cpu = CpuPool(settings.cpu_workers, name=self.name)
        # catalog rebuilds: off the serving process
        self.rebuilds = ProcessOffload(fresh_worker_each_run=self.fresh_rebuild_worker)
        self.watcher: CatalogWatcher | None = None

    async def run_cpu(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """CPU-bound work off the event loop, in the bounded pool."""
        return await self.cpu.run(func, *args, **kwargs)

    def count(self, event: str) -> None:
        if self.metrics is not None:
            self.metrics.count(event)

    async def catalog_version(self, session: AsyncSession) -> Hashable:
        """What the in-memory catalog follows: by default the tracks' count and latest update."""
        return await catalog_version(session)

    async def rebuild_catalog(self, version: Any) -> None:
        """Build the in-memory catalog for `version` (called by the watcher when it moved)."""
        raise NotImplementedError

    async def start(self) -> None:
        """First loads, before requests come (the watcher exists, its rounds not yet running)."""

    def close(self) -> None:
        """Release what the subclass holds beyond the pool and the worker."""

    def user_caches(self) -> Iterable[Any]:
        """Every in-memory cache that may hold a user's answers or models: mappings and
        model_holder.UserModels. The erasure of a user drops their entries
        (musicspace_shared.forget); a service with such a cache lists it here."""
        return ()

    def watch(self, sessionmaker: async_sessionmaker[AsyncSession]) -> CatalogWatcher:
        if self.watcher is None:
            self.watcher = CatalogWatcher(
                name=self.name,
                sessionmaker=sessionmaker,
                rebuild=self.rebuild_catalog,
                every_s=lambda: self.settings.catalog_check_s,
                version=self.catalog_version,
            )
        return self.watcher

    @contextlib.asynccontextmanager
    async def running(self, sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[Self]:
        """The lifespan: start, watch the catalog, and stop everything on the way out."""
        watcher = self.watch(sessionmaker)
        try:
            await self.start()
            watcher.start()
            yield self
        finally:
            await watcher.stop()
            self.close()
            self.rebuilds.close()
            self.cpu.close()
