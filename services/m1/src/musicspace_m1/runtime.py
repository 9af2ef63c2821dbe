"""Process-wide state of the m1 service: the catalog index, loaded models, a CPU pool.

The catalog index is built at startup and rebuilt in the background when the tracks change
(musicspace_shared.watch: a count/max(updated_at) check every `M1_CATALOG_CHECK_S`), in a
low-priority worker process; requests always use the latest complete index, never wait for
a rebuild. CPU work runs in the service's CpuPool (musicspace_shared.cpu).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Hashable
from typing import Any

from cachetools import LRUCache
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from musicspace_m1 import global_model as _loads_sklearn  # noqa: F401 - OpenMP must be loaded to limit it
from musicspace_m1 import repository
from musicspace_m1.catalog_index import CatalogIndex, build_catalog_index
from musicspace_m1.hybrid import GlobalModel, Ranked
from musicspace_m1.settings import Settings
from musicspace_m1.store import ModelCache
from musicspace_shared.catalog import CatalogVersion
from musicspace_shared.db.engine import standalone_session
from musicspace_shared.metrics import ServiceMetrics
from musicspace_shared.model_store import ModelMeta
from musicspace_shared.offload import run_coroutine
from musicspace_shared.runtime import ServiceRuntime

logger = logging.getLogger("musicspace.m1")


class Runtime(ServiceRuntime):
    name = "m1"
    settings: Settings

    def __init__(self, settings: Settings, *, metrics: ServiceMetrics | None = None) -> None:
        super().__init__(settings, metrics=metrics)
        self.models = ModelCache(
            settings.model_dir("M1"), check_every_s=settings.reload_check_s, metrics=metrics
        )
        self.index: CatalogIndex | None = None
        self._generation = 0
        # Exact answers: every input is in the key (musicspace_m1.service.recommend). Ranked
        # candidate lists per user state and filters; rendered pages (without their
        # recommendation_id, fresh per answer) per list, request and cursor.
        self.ranked_cache: LRUCache[Hashable, Ranked] = LRUCache(settings.ranked_cache_size)
        self.response_cache: LRUCache[Hashable, Any] = LRUCache(settings.ranked_cache_size)

    def user_caches(self) -> tuple[Any, ...]:
        return (self.ranked_cache, self.response_cache, self.models.users)

    async def refresh_catalog(
        self, maker: async_sessionmaker[AsyncSession], *, force: bool = False
    ) -> bool:
        """Rebuild the index if the tracks changed; True when a new index was installed."""
        return await self.watch(maker).check(force=force or self.index is None)

    async def rebuild_catalog(self, version: CatalogVersion) -> None:
        """The rebuild (read 28k rows, build) runs in the low-priority worker process."""
        index = await self.rebuilds.run(load_catalog_index, self.settings)
        self._generation += 1
        index.generation = self._generation
        index.catalog_version = version
        self.index = index
        self.count("catalog_rebuilds")
        logger.info("catalog index built: %d tracks", len(index))

    async def global_model(self) -> tuple[GlobalModel, ModelMeta] | None:
        return await self.run_cpu(self.models.global_model)

    async def start(self) -> None:
        """The first index and model load; a failure leaves readiness to say why."""
        assert self.watcher is not None
        try:
            await self.watcher.check(force=True)
        except Exception:  # noqa: BLE001 - a DB down at start: readiness reports it, the watcher retries
            logger.exception("initial catalog load failed")
        with contextlib.suppress(Exception):  # readiness reports it
            await self.global_model()


def load_catalog_index(settings: Settings) -> CatalogIndex:
    """In the rebuild worker: the catalog's index, read from the DB."""
    return run_coroutine(_load_catalog_index(settings))


async def _load_catalog_index(settings: Settings) -> CatalogIndex:
    async with standalone_session(settings) as session:
        frame = await repository.catalog(session)
    return build_catalog_index(frame)
