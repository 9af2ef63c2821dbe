"""What a running m2 holds in memory: the feature model and the content space, kept fresh.

Replicas share the model volume: the model is held by musicspace_shared.model_holder (its
sidecar looked at every `M2_RELOAD_CHECK_S` at most, a newer version loaded, a file that
does not verify refused while the verified one keeps serving). The content space is rebuilt
when the model or the catalog changes: the catalog watcher (musicspace_shared.watch, every
`M2_CATALOG_CHECK_S`) rebuilds it in the background, in a low-priority worker process
(musicspace_shared.offload), while requests keep the current space; only the first build, a
new model, or a caller that needs a track the space lacks waits for one (in this process).
The training that publishes a model (`musicspace train m2`), the worker and a start that builds
keep the space on the volume (musicspace_m2.saved_space): a replica that starts later, on the
same model and catalog, reads it instead of building. Each rebuild runs in a fresh worker,
which exits when it is done; what it keeps for the next one (its last build, packed) lies in a
file of this process' own scratch directory (musicspace_shared.scratch: one a killed m2 left
is removed when the next m2 starts).
Per-user SVMs are trained behind the requests: a bounded queue (`svm_training`,
musicspace_shared.background) run on one low-priority thread (`train_cpu`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any, TypeAlias

from sqlalchemy.ext.asyncio import AsyncSession

from musicspace_m2 import repository, saved_space
from musicspace_m2.predictor import FeaturePredictor
from musicspace_m2.settings import Settings
from musicspace_m2.similar import ContentSpace, build_space, with_candidate_index
from musicspace_m2.space_updates import KeptSpace, update_space
from musicspace_shared.background import BackgroundQueue
from musicspace_shared.catalog import catalog_version
from musicspace_shared.cpu import CpuPool
from musicspace_shared.db.engine import standalone_session
from musicspace_shared.errors import ModelNotReady
from musicspace_shared.heap import release_free_memory
from musicspace_shared.logs import log_fields
from musicspace_shared.metrics import ServiceMetrics
from musicspace_shared.model_holder import Held, ModelHolder
from musicspace_shared.model_store import load_pickle_with_fallback, read_meta
from musicspace_shared.offload import run_coroutine
from musicspace_shared.packing import PackedFile
from musicspace_shared.runtime import ServiceRuntime
from musicspace_shared.scratch import ScratchDir

logger = logging.getLogger("musicspace.m2.runtime")
LoadedModel: TypeAlias = Held[FeaturePredictor]  # .model is the predictor, .meta its sidecar


class Runtime(ServiceRuntime):
    name = "m2"
    settings: Settings
    # A worker kept after its rebuild rested at about 1 GB at 1M tracks (the build's heap,
    # not given back), beside the serving process' 2.5 GB.
    fresh_rebuild_worker = True

    def __init__(self, settings: Settings, *, metrics: ServiceMetrics | None = None) -> None:
        super().__init__(settings, metrics=metrics)
        self.holder: ModelHolder[FeaturePredictor] = ModelHolder(
            settings.model_path, check_every_s=settings.reload_check_s, metrics=metrics
        )
        self.space: ContentSpace | None = None
        self.space_key: tuple[Any, ...] | None = None  # (model version, *catalog_version)
        self._space_lock = asyncio.Lock()
        self._saving: threading.Thread | None = None  # the space a start built, being saved
        # One thread, below the request threads' priority: training never delays an answer.
        self.train_cpu = CpuPool(1, name="m2-train", niceness=10)
        self.svm_training = BackgroundQueue(
            name="user_svm_training", limit=settings.svm_queue_limit, metrics=metrics
        )
        self._worker_files = ScratchDir("musicspace-m2-")
        # The rebuild workers' last build, read by the next one.
        self.kept_space = self._worker_files.path / "kept-space.bin"

    def close(self) -> None:
        if self._saving is not None:
            self._saving.join()
        self.svm_training.close()
        self.train_cpu.close()
        self._worker_files.cleanup()

    def user_caches(self) -> tuple[BackgroundQueue]:
        return (self.svm_training,)

    async def start(self) -> None:
        """Load the model and, when there is one, the content space (the one saved on the
        volume while model and catalog are unchanged, else built here and saved), so a ready
        replica answers at once. A missing model is not fatal (/readyz says so until
        `musicspace train m2` runs; the first request then builds the space)."""
        if await asyncio.to_thread(self.holder.get, force=True) is None:
            return
        assert self.watcher is not None
        try:
            async with self.watcher.sessionmaker() as session:
                await self._refresh_space(session, at_start=True)
        except Exception as exc:  # noqa: BLE001 - e.g. no catalog yet: the first request builds
            logger.warning(
                "content space not built at start",
                extra=log_fields(error=f"{type(exc).__name__}: {exc}"[:200]),
            )

    async def require_model(self) -> LoadedModel:
        """The current model (looked for on the volume when the throttle allows), else 503."""
        held = self.holder.held
        if held is None or self.holder.due():
            held = await asyncio.to_thread(self.holder.get)
        if held is None:
            raise ModelNotReady(f"m2 model {self.holder.readiness()}: run `musicspace train m2`")
        return held

    async def content_space(self, session: AsyncSession, *, force: bool = False) -> ContentSpace:
        """The content space for the current model (built here when there is none for it);
        catalog changes reach it through the watcher."""
        model = await self.require_model()
        space, key = self.space, self.space_key
        if space is not None and key and key[0] == model.version and not force:
            return space
        return await self._refresh_space(session)

    async def catalog_version(self, session: AsyncSession) -> tuple[Any, ...]:
        held = self.holder.held
        return (held.version if held else None, *await catalog_version(session))

    async def rebuild_catalog(self, key: tuple[Any, ...]) -> None:
        """A change the watcher found: rebuilt in the worker process."""
        if key[0] is None:
            return  # no model yet: the first request builds the space
        async with self._space_lock:
            if self.space is not None and self.space_key == key:
                return
            space, built = await self.rebuilds.run(load_space, self.settings, self.kept_space)
            held = self.holder.held
            if held is None or built[0] != held.version:
                return  # the model moved meanwhile: the next round rebuilds
            if space is None and (self.space_key is None or self.space_key[0] != built[0]):
                # The worker saw no change, but this process has no space for that model
                # (the build kept in the file is of it, this process' space is not): ask for
                # a full build.
                space, built = await self.rebuilds.run(
                    load_space_anew, self.settings, self.kept_space
                )
            if space is not None:
                self.space = space
                await asyncio.to_thread(release_free_memory)  # the old space's
            self.space_key = built
            self.count("catalog_rebuilds")

    async def _refresh_space(
        self, session: AsyncSession, *, at_start: bool = False
    ) -> ContentSpace:
        """Rebuild the space when the model or the catalog state moved (one at a time). At
        start, the space saved on the volume for the same key is taken instead, and one built
        is saved behind the first requests (later builds here are not saved: the worker's
        are)."""
        model = await self.require_model()
        async with self._space_lock:
            key = (model.version, *await catalog_version(session))
            if at_start and self.settings.state_on_volume:
                self.space = await asyncio.to_thread(saved_space.load, self.settings, key)
                if self.space is not None:
                    self.space_key = key
                    self.count("space_from_volume")
                    return self.space
            if self.space is None or self.space_key != key:
                table = await repository.load_track_table(session)
                space = await self.run_cpu(
                    build_space,
                    track_ids=table.track_ids,
                    inputs=table.inputs,
                    features=table.features,
                    impute=model.model.predict,
                    tag=model.version,
                )
                index_min = self.settings.candidate_index_min_tracks
                self.space = await self.run_cpu(with_candidate_index, space, index_min)
                self.space_key = key
                self.count("catalog_rebuilds")
                if at_start and self.settings.state_on_volume:
                    # Written behind the first requests (about 4 s at 1M tracks, which the
                    # start no longer waits for); a stop waits for it (close).
                    self._saving = threading.Thread(
                        target=saved_space.save,
                        args=(self.settings, key, self.space),
                        name="m2-save-space",
                    )
                    self._saving.start()
                await asyncio.to_thread(release_free_memory)
            return self.space


# In the rebuild worker (a fresh process for each rebuild): its last build
# (musicspace_m2.space_updates: later builds place only new and changed rows) is kept packed in
# the serving process' file between rebuilds. As objects, the vocabularies' 400k strings made at
# 1M tracks among the build's millions of temporary ones held 1,011 MB of pymalloc arenas with
# 121 MB in use (1.39 GB RSS); packed in memory, 0.64 GB; in the file, none.


def load_space(settings: Settings, kept: Path) -> tuple[ContentSpace | None, tuple[Any, ...]]:
    """In the rebuild worker: the content space over the DB's catalog (None when no row's
    content changed since the build kept in `kept`: the serving process keeps its space), and
    its key."""
    return run_coroutine(_load_space(settings, PackedFile(kept)))


def load_space_anew(settings: Settings, kept: Path) -> tuple[ContentSpace | None, tuple[Any, ...]]:
    """In the rebuild worker: a full build, whatever was built before."""
    PackedFile(kept).clear()
    return load_space(settings, kept)


async def save_space_for_replicas(settings: Settings) -> dict[str, Any]:
    """After a training (`musicspace train m2`): the content space for the published model
    over the catalog as it is now, built and saved on the volume; its size and the seconds."""
    started = time.monotonic()
    space, key = await _load_space(settings, None)
    assert space is not None  # nothing kept: always a full build
    return {
        "tracks": len(space.track_ids),
        "catalog_version": [str(part) for part in key[1:]],
        "path": str(saved_space.space_path(settings)),
        "seconds": round(time.monotonic() - started, 1),
    }


async def _load_space(
    settings: Settings, kept_file: PackedFile | None
) -> tuple[ContentSpace | None, tuple[Any, ...]]:
    meta = read_meta(settings.model_path)
    if meta is None:
        raise ModelNotReady("m2 model missing: run `musicspace train m2`")
    predictor, artifact = load_pickle_with_fallback(settings.model_path)
    version = artifact.meta.version
    async with standalone_session(settings) as session:
        state = await catalog_version(session)
        table = await repository.load_track_table(session)
    kept: KeptSpace | None = kept_file.get() if kept_file is not None else None
    update = update_space(kept, table, impute=predictor.predict, model_version=version)
    if kept_file is not None and update.kept is not kept:
        kept_file.put(update.kept)
    del kept
    logger.info(
        "content space updated",
        extra=log_fields(
            changed=update.changed, rows_placed=update.rows_placed, full_fit=update.full_fit
        ),
    )
    if update.space is None:
        return None, (version, *state)
    space = with_candidate_index(update.space, settings.candidate_index_min_tracks)
    del update, table  # the worker keeps its KeptSpace in the file only: the space leaves
    if settings.state_on_volume:
        saved_space.save(settings, (version, *state), space)
    release_free_memory()
    return space, (version, *state)
