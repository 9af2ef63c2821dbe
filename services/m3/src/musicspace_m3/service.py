"""The m3 recommender as a process-wide object: snapshot, models, bounded prediction pool."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from cachetools import TTLCache
from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession

from musicspace_m3 import ranker, repository, saved_snapshot, scoring
from musicspace_m3.catalog_index import CatalogIndex
from musicspace_m3.models import Loaded, ModelRegistry, user_model_path
from musicspace_m3.repository import RawUser
from musicspace_m3.schemas import RecommendedTrack, RecommendRequest
from musicspace_m3.scoring import rank
from musicspace_m3.settings import Settings
from musicspace_m3.state import Snapshot, load_snapshot, profile_for
from musicspace_m3.training import FinetuneResult, finetune_user
from musicspace_shared import selection
from musicspace_shared.cpu import CpuPool
from musicspace_shared.errors import ModelNotReady, NotFound
from musicspace_shared.logs import log_fields
from musicspace_shared.metrics import ServiceMetrics
from musicspace_shared.model_holder import signature
from musicspace_shared.recommend import RenderedPage
from musicspace_shared.runtime import ServiceRuntime

logger = logging.getLogger("musicspace.m3.service")


@dataclass(frozen=True)
class Ranked:
    """A user's ranked candidates and the model that ranked them (cached per user state)."""

    found: scoring.Ranked
    model: Loaded
    served: str  # personal | global


_ITEMS = TypeAdapter(list[RecommendedTrack])


class Recommender(ServiceRuntime):
    """Holds the snapshot and models; ranks in a bounded thread pool (one CatBoost thread per call)."""

    name = "m3"
    settings: Settings

    def __init__(self, settings: Settings, *, metrics: ServiceMetrics | None = None) -> None:
        super().__init__(settings, metrics=metrics)
        self.models = ModelRegistry(
            settings.model_dir("M3"),
            settings.global_model_name,
            check_every_s=settings.reload_check_s,
            metrics=metrics,
        )
        self.snapshot: Snapshot | None = None
        # Fine-tuning gets its own single thread so it never starves predictions of workers.
        self.train_cpu = CpuPool(1, name="m3-train")
        # Rendered pages and ranked candidate lists (musicspace_m3.service.Recommender.recommend).
        self._cache: TTLCache[tuple[Any, ...], RenderedPage] | None = None
        self._ranked: TTLCache[tuple[Any, ...], Ranked] | None = None
        if settings.cache_ttl_s > 0:
            self._cache = TTLCache(settings.cache_entries, ttl=settings.cache_ttl_s)
            self._ranked = TTLCache(settings.ranked_cache_entries, ttl=settings.cache_ttl_s)

    async def start(self) -> None:
        """The first snapshot (the one saved on the volume while the catalog is unchanged;
        the activity since is caught up behind the requests) and the global model."""
        saved = await self._saved_snapshot()
        if saved is None:
            await self.refresh()
        else:
            assert self.watcher is not None
            self.snapshot = saved
            self.watcher.follow((saved.catalog_fingerprint, saved.activity_fingerprint))
            self.count("snapshot_from_volume")
            logger.info(
                "snapshot read from the volume",
                extra=log_fields(tracks=len(saved.index), users=saved.collab.n_users),
            )
        await asyncio.to_thread(self.models.refresh_global, force=True)

    async def _saved_snapshot(self) -> Snapshot | None:
        if not self.settings.state_on_volume:
            return None
        assert self.watcher is not None
        async with self.watcher.sessionmaker() as session:
            catalog_fp = await repository.catalog_fingerprint(session)
        return await asyncio.to_thread(saved_snapshot.load, self.settings, catalog_fp=catalog_fp)

    def forget_saved_state(self, user_id: int) -> list[dict[str, Any]]:
        """The saved snapshot holds every user's positives: an erasure deletes it."""
        return saved_snapshot.forget(self.settings, user_id)

    def close(self) -> None:
        self.train_cpu.close()

    def user_caches(self) -> tuple[Any, ...]:
        answers = tuple(c for c in (self._cache, self._ranked) if c is not None)
        return (*answers, self.models.users)

    async def refresh(self) -> bool:
        """Rebuild the snapshot if tracks, PMS lists or interactions changed; True when rebuilt.

        The check is three aggregate queries; the rebuild runs in the worker process."""
        assert self.watcher is not None
        return await self.watcher.check()

    async def catalog_version(self, session: AsyncSession) -> tuple[str, str]:
        """What the snapshot is built from: the catalog's and the users' activity's fingerprints."""
        return (
            await repository.catalog_fingerprint(session),
            await repository.activity_fingerprint(session),
        )

    async def rebuild_catalog(self, fingerprints: tuple[str, str]) -> None:
        catalog_fp, activity_fp = fingerprints
        current = self.snapshot
        same_catalog = current is not None and current.catalog_fingerprint == catalog_fp
        self.snapshot = await self.rebuilds.run(
            load_snapshot, self.settings, catalog_fp=catalog_fp, activity_fp=activity_fp
        )
        self.count("catalog_rebuilds" if not same_catalog else "activity_rebuilds")
        logger.info(
            "snapshot built",
            extra=log_fields(
                tracks=len(self.snapshot.index),
                users=self.snapshot.collab.n_users,
                catalog_changed=not same_catalog,
            ),
        )

    def readiness(self) -> str | None:
        """None when ready; else why not (may load a newer model from the volume: call off the loop)."""
        if self.snapshot is None:
            return "catalog not loaded"
        return self.models.holder.readiness()

    async def _user(self, session: AsyncSession, user_id: int) -> RawUser:
        raw = await repository.load_user(session, user_id)
        if raw is None:
            raise NotFound(f"user {user_id} not found")
        return raw

    async def _ready(self) -> tuple[Snapshot, Loaded]:
        # Newer versions load in the worker (_rank) or readyz; here only a first load, off the loop.
        snapshot = self.snapshot
        loaded = self.models.global_model or await asyncio.to_thread(self.models.refresh_global)
        if snapshot is None or loaded is None:
            raise ModelNotReady("m3 global model not loaded yet (run `musicspace train m3`)")
        return snapshot, loaded

    async def recommend(self, *, session: AsyncSession, request: RecommendRequest) -> bytes:
        """A page of the user's ranked tracks through the shared post-ranking steps
        (musicspace_shared.selection), with drivers: the JSON body, with a fresh
        recommendation_id. Cached: the ranked candidate list per user state and filters, and
        the rendered page (without its id) per list, request and cursor."""
        user_id = request.user_id
        raw = await self._user(session, user_id)
        snapshot, base = await self._ready()
        personal_stamp = signature(user_model_path(self.models.model_dir, user_id))
        version = (base.version, personal_stamp, snapshot.catalog_fingerprint)
        offset = selection.cursor_offset(request, source="m3", version=version)
        mine = hash((tuple(sorted(raw.pms)), tuple(sorted(raw.interactions.items()))))
        # Everything an answer depends on except other users' newest activity (bounded by the TTL).
        key = (user_id, *version, mine, request.exclude_owned, request.filter_key())
        page_key = (user_id, key, request.selection_key(), offset, request.limit)
        page = self._cache.get(page_key) if self._cache is not None else None
        if page is None:
            ranked = self._ranked.get(key) if self._ranked is not None else None
            index = snapshot.index
            mask = selection.allowed(index.columns, request, owned=index.frame.rows(raw.owned))
            cached = ranked is not None

            def answer(ranked: Ranked | None) -> tuple[Ranked, RenderedPage]:
                # One CPU job (one thread hop): rank when not cached, then cut and explain the page.
                if ranked is None:
                    ranked = self._rank(snapshot, base, user_id, raw, mask)
                return ranked, self._page(index, ranked, request, version, mask)

            ranked, page = await self.run_cpu(answer, ranked)
            if not cached and self._ranked is not None:
                self._ranked[key] = ranked
            self.count("recommendations")
            if self._cache is not None:
                self._cache[page_key] = page
        else:
            self.count("recommendation_cache_hits")
        return page.body()

    def _rank(
        self,
        snapshot: Snapshot,
        base: Loaded,
        user_id: int,
        raw: RawUser,
        mask: np.ndarray | None,
    ) -> Ranked:
        """Every candidate, ranked (the list the pages are cut from)."""
        base = (
            self.models.refresh_global() or base
        )  # throttled stat; reloads when another replica published
        personal = self.models.user_model(user_id)
        loaded = personal or base
        index = snapshot.index
        # Disliked tracks never; owned, excluded and filtered-out ones as `mask` says.
        excluded = index.frame.rows(sorted(raw.disliked))
        if mask is not None:
            excluded = np.union1d(excluded, np.flatnonzero(~mask))
        profile = replace(profile_for(index, user_id, raw), excluded=np.unique(excluded))
        ranked = rank(
            index=index,
            collab=snapshot.collab,
            model=loaded.model,
            profile=profile,
            n_candidates=self.settings.n_candidates,
            limit=self.settings.n_candidates,
        )
        return Ranked(ranked, loaded, "personal" if personal else "global")

    def _page(
        self,
        index: CatalogIndex,
        ranked: Ranked,
        request: RecommendRequest,
        version: tuple[Any, ...],
        mask: np.ndarray | None,
    ) -> RenderedPage:
        found = ranked.found
        cut = selection.take_page(
            found.positions,
            columns=index.columns,
            request=request,
            source="m3",
            version=version,
            mask=mask,
            default_cap=self.settings.max_per_artist,
        )
        # Explanations for the items within the first `explain_top` ranks (all by default).
        explained = cut.positions[
            cut.offset + np.arange(len(cut.positions)) < self.settings.explain_top
        ]
        effects = (
            ranker.contributions(ranked.model.model, found.x[explained], found.reference)
            if len(explained)
            else np.zeros((0, 0))
        )
        frame = index.frame
        scores = selection.logistic(found.scores[cut.positions])
        items = [
            RecommendedTrack(
                track_id=frame.track_ids[p],
                title=frame.titles[p] or None,
                artist=frame.artists[p] or None,
                score=round(float(s), 5),
                drivers=ranker.top_drivers(effects[i]) if i < len(explained) else {},
            )
            for i, (p, s) in enumerate(
                zip(found.positions[cut.positions].tolist(), scores.tolist(), strict=True)
            )
        ]
        fields = {
            "user_id": request.user_id,
            "source": "m3",
            "next_cursor": cut.next_cursor,
            "model": ranked.served,
            "version": ranked.model.version,
            "candidates": found.n_candidates,
        }
        return RenderedPage(fields, _ITEMS.dump_json(items))

    async def train_user(self, *, session: AsyncSession, user_id: int) -> FinetuneResult:
        """Fine-tune the global model on this user's data (or say why the global model serves)."""
        raw = await self._user(session, user_id)
        await self.refresh()  # the user's newest tracks and events must be in the matrix
        snapshot, base = await self._ready()
        result = await self.train_cpu.run(
            finetune_user,
            snapshot=snapshot,
            base=base,
            user_id=user_id,
            raw=raw,
            settings=self.settings,
        )
        self.count("trainings" if result.personal else "training_fallbacks")
        if result.personal and result.version:
            await repository.record_model(
                session,
                kind="user_model",
                owner_id=user_id,
                version=result.version,
                path=str(self.models.model_dir / "user_models" / f"{user_id}_.cbm"),
                sha256=result.sha256 or "",
                rows=result.rows,
                metrics=result.metrics,
            )
        return result
