"""What a running m2 holds in memory: the feature model and the content space, kept fresh.

Replicas share the model volume, so before use the stored meta version is compared (a small
file read, at most every `reload_check_s`) and the model reloaded when another process
published a newer one. The content space is rebuilt when the model or the catalog changes:
a catalog change found by the periodic check (every `catalog_refresh_s`) is rebuilt in the
background (coalesced: one at a time), in a low-priority worker process
(musicspace_shared.offload), while requests keep the current space; only the first build, a
new model, or a caller that needs a track the space lacks waits for one (in this process).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from musicspace_m2 import repository
from musicspace_m2.predictor import FeaturePredictor
from musicspace_m2.settings import Settings
from musicspace_m2.similar import ContentSpace, build_space
from musicspace_shared.coalesce import Coalescer
from musicspace_shared.db.engine import standalone_session
from musicspace_shared.errors import ModelNotReady
from musicspace_shared.health import Degraded
from musicspace_shared.model_store import (
    ModelIntegrityError,
    ModelMeta,
    load_pickle_with_fallback,
    read_meta,
)
from musicspace_shared.offload import ProcessOffload

logger = logging.getLogger("musicspace.m2.runtime")
T = TypeVar("T")


@dataclass
class LoadedModel:
    predictor: FeaturePredictor
    meta: ModelMeta


@dataclass
class Runtime:
    settings: Settings
    executor: ThreadPoolExecutor
    metrics: Any = None  # the app's ServiceMetrics (None in tools)
    # For background catalog refreshes (the service sets it; tools refresh inline).
    sessionmaker: async_sessionmaker[AsyncSession] | None = None
    model: LoadedModel | None = None
    load_error: str | None = None
    degraded: str | None = None  # set while a corrupt new model has us on the previous one
    _refused_version: str | None = None
    space: ContentSpace | None = None
    space_key: tuple[Any, ...] | None = None
    _checked_at: float = 0.0
    _space_checked_at: float = 0.0
    _model_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _space_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _space_refreshes: Coalescer[ContentSpace] | None = None
    rebuilds: ProcessOffload = field(default_factory=ProcessOffload)  # background rebuilds

    async def run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """CPU work on the bounded executor, off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: func(*args, **kwargs))

    async def refresh_model(self, *, force: bool = False) -> LoadedModel | None:
        """Reload when the stored version differs from the one in memory (throttled)."""
        now = time.monotonic()
        if (
            not force
            and self.model is not None
            and now - self._checked_at < self.settings.reload_check_s
        ):
            return self.model
        async with self._model_lock:
            self._checked_at = time.monotonic()
            path = self.settings.model_path
            meta = await asyncio.to_thread(read_meta, path)
            if meta is None:
                self.load_error = "missing"
                return self.model
            if self.model is not None and self.model.meta.version == meta.version:
                return self.model
            if meta.version == self._refused_version and self.model is not None:
                return self.model  # already refused this artifact; keep what we hold
            try:
                predictor, artifact = await asyncio.to_thread(load_pickle_with_fallback, path)
            except ModelIntegrityError as exc:
                # Keep serving what we hold (if anything); never unpickle unverified bytes.
                self._refuse(meta.version, f"integrity: {exc}")
                return self.model
            except (OSError, EOFError, ValueError) as exc:
                self._refuse(meta.version, f"unreadable: {type(exc).__name__}")
                return self.model
            if artifact.problem:
                self._refuse(meta.version, artifact.problem)
                self.degraded = (
                    f"serving previous version {artifact.meta.version}: {artifact.problem}"
                )
            else:
                self.degraded = None
            if self.model is None or self.model.meta.version != artifact.meta.version:
                self.model = LoadedModel(predictor, artifact.meta)
                logger.info("m2 model loaded", extra={"version": artifact.meta.version})
            self.load_error = None
            return self.model

    def _refuse(self, version: str, reason: str) -> None:
        self._refused_version = version
        self.load_error = reason
        logger.error("m2 model refused: %s", reason)
        if self.metrics is not None:
            self.metrics.count("model_load_failures")

    async def require_model(self) -> LoadedModel:
        model = await self.refresh_model()
        if model is None:
            raise ModelNotReady(
                f"m2 model {self.load_error or 'missing'}: run `musicspace train m2`"
            )
        return model

    async def content_space(self, session: AsyncSession, *, force: bool = False) -> ContentSpace:
        """The content space for the current model and catalog (rebuilt when either changes)."""
        model = await self.require_model()
        space = self.space
        current = (
            space is not None and bool(self.space_key) and self.space_key[0] == model.meta.version
        )
        if space is not None and current and not force:
            if self._checked_recently():
                return space
            if self.sessionmaker is not None:
                self._space_checked_at = time.monotonic()  # one request per interval asks
                if self._space_refreshes is None:
                    self._space_refreshes = Coalescer(self._refresh_in_background, name="m2-space")
                self._space_refreshes.request()
                return space
        return await self._refresh_space(session)

    def _checked_recently(self) -> bool:
        return time.monotonic() - self._space_checked_at < self.settings.catalog_refresh_s

    async def _refresh_in_background(self) -> ContentSpace:
        """The periodic check; a rebuild it finds needed runs in the worker process."""
        assert self.sessionmaker is not None
        model = await self.require_model()
        async with self.sessionmaker() as session:
            state = await repository.catalog_state(session)
        async with self._space_lock:
            if self.space is not None and self.space_key == (model.meta.version, *state):
                self._space_checked_at = time.monotonic()
                return self.space
            space, key = await self.rebuilds.run(load_space, self.settings)
            if key[0] == model.meta.version:  # else the next check rebuilds for the new model
                self.space, self.space_key = space, key
                if self.metrics is not None:
                    self.metrics.count("catalog_rebuilds")
            self._space_checked_at = time.monotonic()
            return self.space or space

    async def _refresh_space(self, session: AsyncSession) -> ContentSpace:
        """Rebuild the space when the model or the catalog state moved (one at a time)."""
        model = await self.require_model()
        async with self._space_lock:
            state = await repository.catalog_state(session)
            key = (model.meta.version, *state)
            if self.space is None or self.space_key != key:
                table = await repository.load_track_table(session)
                self.space = await self.run(
                    build_space,
                    track_ids=table.track_ids,
                    inputs=table.inputs,
                    features=table.features,
                    impute=model.predictor.predict,
                    tag=model.meta.version,
                )
                self.space_key = key
                if self.metrics is not None:
                    self.metrics.count("catalog_rebuilds")
            self._space_checked_at = time.monotonic()
            return self.space

    async def close(self) -> None:
        if self._space_refreshes is not None:
            await self._space_refreshes.stop()
        self.rebuilds.close()


# The worker process' feature model (imputes the features of tracks that lack them).
_worker_model: tuple[str, FeaturePredictor] | None = None


def load_space(settings: Settings) -> tuple[ContentSpace, tuple[Any, ...]]:
    """In the rebuild worker: the content space over the DB's catalog, and its key."""
    return asyncio.run(_load_space(settings))


async def _load_space(settings: Settings) -> tuple[ContentSpace, tuple[Any, ...]]:
    global _worker_model
    meta = read_meta(settings.model_path)
    if meta is None:
        raise ModelNotReady("m2 model missing: run `musicspace train m2`")
    if _worker_model is None or _worker_model[0] != meta.version:
        predictor, artifact = load_pickle_with_fallback(settings.model_path)
        _worker_model = (artifact.meta.version, predictor)
    version, predictor = _worker_model
    async with standalone_session(settings) as session:
        state = await repository.catalog_state(session)
        table = await repository.load_track_table(session)
    space = build_space(
        track_ids=table.track_ids,
        inputs=table.inputs,
        features=table.features,
        impute=predictor.predict,
        tag=version,
    )
    return space, (version, *state)


async def model_readiness(runtime: Runtime) -> str | None:
    model = await runtime.refresh_model()
    if model is None:
        return runtime.load_error or "missing"
    return Degraded(runtime.degraded) if runtime.degraded else None
