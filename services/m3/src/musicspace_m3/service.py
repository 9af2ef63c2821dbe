"""The m3 recommender as a process-wide object: snapshot, models, bounded prediction pool."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from cachetools import TTLCache
from sqlalchemy.ext.asyncio import AsyncSession

from musicspace_m3 import ranker, repository
from musicspace_m3.models import Loaded, ModelRegistry, user_model_path
from musicspace_m3.repository import RawUser
from musicspace_m3.schemas import RecommendResponse
from musicspace_m3.scoring import rank
from musicspace_m3.settings import Settings
from musicspace_m3.state import Snapshot, load_snapshot, profile_for
from musicspace_m3.training import FinetuneResult, finetune_user
from musicspace_shared.cpu import CpuPool
from musicspace_shared.errors import ModelNotReady, NotFound
from musicspace_shared.logs import log_fields
from musicspace_shared.metrics import ServiceMetrics
from musicspace_shared.model_holder import signature
from musicspace_shared.runtime import ServiceRuntime

logger = logging.getLogger("musicspace.m3.service")


@dataclass
class Item:
    track_id: str
    title: str
    artist: str
    score: float
    drivers: dict[str, float]


@dataclass
class Recommendation:
    user_id: int
    model: str  # personal | global
    version: str
    candidates: int
    items: list[Item]
    body: bytes = b""  # the RecommendResponse JSON, rendered once and cached with the answer


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
        self._cache: TTLCache[tuple[Any, ...], Recommendation] | None = (
            TTLCache(settings.cache_entries, ttl=settings.cache_ttl_s)
            if settings.cache_ttl_s > 0
            else None
        )

    async def start(self) -> None:
        """The first snapshot and global model load."""
        await self.refresh()
        await asyncio.to_thread(self.models.refresh_global, force=True)

    def close(self) -> None:
        self.train_cpu.close()

    def user_caches(self) -> tuple[Any, ...]:
        answers = () if self._cache is None else (self._cache,)
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

    async def recommend(
        self, *, session: AsyncSession, user_id: int, limit: int, max_per_artist: int | None
    ) -> Recommendation:
        """Top tracks for a user: not owned, not disliked, at most N per artist, with drivers."""
        raw = await self._user(session, user_id)
        snapshot, base = await self._ready()
        cap = max_per_artist or self.settings.max_per_artist
        key = self._cache_key(snapshot, base, user_id, raw, limit, cap)
        hit = self._cache.get(key) if self._cache is not None else None
        if hit is not None:
            self.count("recommendation_cache_hits")
            return hit
        ranked = await self.run_cpu(self._rank, snapshot, base, user_id, raw, limit, cap)
        body = RecommendResponse.model_validate(ranked, from_attributes=True).model_dump_json()
        result = replace(ranked, body=body.encode())
        self.count("recommendations")
        if self._cache is not None:
            self._cache[key] = result
        return result

    def _cache_key(
        self, snapshot: Snapshot, base: Loaded, user_id: int, raw: RawUser, limit: int, cap: int
    ) -> tuple[Any, ...]:
        """Everything an answer depends on except other users' newest activity (bounded by the TTL)."""
        personal_stamp = signature(user_model_path(self.models.model_dir, user_id))
        mine = hash((tuple(sorted(raw.pms)), tuple(sorted(raw.interactions.items()))))
        return (
            user_id,
            limit,
            cap,
            base.version,
            personal_stamp,
            snapshot.catalog_fingerprint,
            mine,
        )

    def _rank(
        self, snapshot: Snapshot, base: Loaded, user_id: int, raw: RawUser, limit: int, cap: int
    ) -> Recommendation:
        base = (
            self.models.refresh_global() or base
        )  # throttled stat; reloads when another replica published
        personal = self.models.user_model(user_id)
        loaded = personal or base
        index = snapshot.index
        ranked = rank(
            index=index,
            collab=snapshot.collab,
            model=loaded.model,
            profile=profile_for(index, user_id, raw),
            n_candidates=self.settings.n_candidates,
            limit=limit,
            max_per_artist=cap,
        )
        n_explain = min(self.settings.explain_top, len(ranked.positions))
        effects = (
            ranker.contributions(loaded.model, ranked.x[:n_explain], ranked.reference)
            if n_explain
            else np.zeros((0, 0))
        )
        frame = index.frame
        items = [
            Item(
                frame.track_ids[p],
                frame.titles[p],
                frame.artists[p],
                round(float(s), 5),
                ranker.top_drivers(effects[i]) if i < n_explain else {},
            )
            for i, (p, s) in enumerate(
                zip(ranked.positions.tolist(), ranked.scores.tolist(), strict=True)
            )
        ]
        return Recommendation(
            user_id,
            "personal" if personal else "global",
            loaded.version,
            ranked.n_candidates,
            items,
        )

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
