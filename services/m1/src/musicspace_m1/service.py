"""m1 use cases: train a user, recommend for a user, report a user's model status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession

from musicspace_m1 import repository, store
from musicspace_m1.catalog_index import CatalogIndex
from musicspace_m1.hybrid import GlobalModel, Ranked, drivers, rank
from musicspace_m1.profile import NO_AUDIO, build_profile
from musicspace_m1.runtime import Runtime
from musicspace_m1.schemas import RecommendedTrack, RecommendRequest
from musicspace_m1.training import UserTrainingInput, train_user_model
from musicspace_shared import model_store, selection
from musicspace_shared.catalog import load_tracks
from musicspace_shared.errors import ModelNotReady, NotFound
from musicspace_shared.recommend import RenderedPage


@dataclass
class TrainResult:
    user_id: int
    model: str
    reason: str | None
    tracks_used: int
    version: str
    trained_at: str
    metrics: dict[str, float]


async def _user(session: AsyncSession, user_id: int) -> repository.UserTracks:
    found = await repository.user_tracks(session, user_id=user_id)
    if found is None:
        raise NotFound(f"user {user_id} not found")
    return found


async def _ready(runtime: Runtime) -> tuple[CatalogIndex, GlobalModel, model_store.ModelMeta]:
    # In the loop: a stat() while cached; a reload after `musicspace train m1` takes a few ms once.
    loaded = runtime.models.global_model()
    if loaded is None or runtime.index is None:
        raise ModelNotReady("the m1 global model is not trained yet (run `musicspace train m1`)")
    return runtime.index, loaded[0], loaded[1]


async def train_user(*, session: AsyncSession, runtime: Runtime, user_id: int) -> TrainResult:
    """Fit and publish the user's personal model, or their profile fallback with the reason."""
    user = await _user(session, user_id)
    index, model, _ = await _ready(runtime)
    # Features straight from the DB: enrichment may have just written predictions that the
    # catalog index (refreshed every few seconds) does not hold yet.
    fresh = await load_tracks(session, sorted(set(user.owned)))
    data = UserTrainingInput(
        user_id=user_id,
        owned_rows=index.frame.rows(user.owned),
        owned_audio=(fresh.features - index.feature_mean) / index.feature_std,
        owned_total=len(set(user.owned)),
    )
    min_tracks = runtime.settings.min_tracks_for_personal_model

    def fit_and_publish() -> store.UserModel:
        user_model, metadata = train_user_model(index, model, data, min_tracks=min_tracks)
        store.publish_user_model(runtime.models.root, user_model, metadata)
        return user_model

    user_model = await runtime.run_cpu(fit_and_publish)
    runtime.models.forget(user_id)
    return TrainResult(
        user_id=user_id,
        model="profile_fallback" if user_model.fallback else "personal",
        reason=user_model.reason,
        tracks_used=user_model.tracks_used,
        version=user_model.version,
        trained_at=user_model.trained_at,
        metrics=user_model.metrics,
    )


@dataclass(frozen=True)
class RenderedRecommendation:
    """A recommend answer as the route sends it: which model served, and the JSON body."""

    model: str
    body: bytes


_ITEMS = TypeAdapter(list[RecommendedTrack])


async def recommend(
    *, session: AsyncSession, runtime: Runtime, request: RecommendRequest
) -> RenderedRecommendation:
    """Hybrid recommendations through the shared post-ranking steps (musicspace_shared.selection).

    Owned (unless exclude_owned is false), disliked, excluded and filtered-out tracks are left
    out before the candidate stage, so its 400 candidates all qualify. Every input of the
    ranking is in the cache key (the user's tracks and dislikes, the global and personal model
    versions, the catalog generation, the filters), so a cached answer is exactly what a fresh
    computation would return. Two levels: the ranked candidate list, and the rendered page per
    (list, request, cursor), which spares a repeat request the per-artist cap, the drivers and
    the JSON encoding.
    """
    user_id = request.user_id
    user = await _user(session, user_id)
    index, model, meta = await _ready(runtime)
    # A stat() when cached; a reload (after a retrain) unpickles a few kilobytes.
    user_model = runtime.models.user_model(user_id)
    personal_ok = user_model is not None and not user_model.fallback
    user_version = user_model.version if user_model is not None else None
    version = (meta.version, user_version, index.catalog_version)
    offset = selection.cursor_offset(request, source="m1", version=version)
    state = (
        user_id,
        meta.version,
        user_version,
        index.generation,
        request.exclude_owned,
        hash(frozenset(user.owned)),
        hash(frozenset(user.disliked)),
        request.filter_key(),
    )
    served = "personal" if personal_ok else "profile_fallback"
    page_key = (state, request.selection_key(), offset, request.limit)
    cached: RenderedPage | None = runtime.response_cache.get(page_key)
    if cached is not None:
        return RenderedRecommendation(served, cached.body())
    owned = index.frame.rows(user.owned)
    mask = selection.allowed(index.columns, request, owned=owned)
    ranked = runtime.ranked_cache.get(state)
    if ranked is None:
        disliked = index.frame.rows(user.disliked)
        excluded = np.concatenate(
            [np.flatnonzero(~mask) if mask is not None else owned[:0], disliked]
        )
        # Without a personal model the audio part is the global average profile (fallback).
        profile = build_profile(
            index,
            owned,
            global_audio=model.global_audio,
            min_tracks=model.min_tracks,
            own_audio=user_model.audio if personal_ok and user_model is not None else NO_AUDIO,
        )
        personal = user_model.personal if personal_ok and user_model is not None else None
        ranked = await runtime.run_cpu(
            rank, index, model, profile, personal, exclude=excluded, limit=model.n_candidates
        )
        if runtime.ranked_cache.maxsize:
            runtime.ranked_cache[state] = ranked
    page = selection.take_page(
        ranked.rows,
        columns=index.columns,
        request=request,
        source="m1",
        version=version,
        mask=mask,
        default_cap=runtime.settings.max_per_artist,
    )
    rendered = RenderedPage(
        fields={
            "user_id": user_id,
            "source": "m1",
            "next_cursor": page.next_cursor,
            "model": served,
            "version": user_version if personal_ok else meta.version,
        },
        items_json=_ITEMS.dump_json(_items(index, ranked, page.positions)),
    )
    if runtime.response_cache.maxsize:
        runtime.response_cache[page_key] = rendered
    return RenderedRecommendation(served, rendered.body())


def _items(index: CatalogIndex, ranked: Ranked, positions: np.ndarray) -> list[RecommendedTrack]:
    """The page's tracks with their drivers."""
    frame = index.frame
    rows, scores, feats = (
        ranked.rows[positions],
        ranked.scores[positions],
        ranked.features[positions],
    )
    return [
        RecommendedTrack(
            track_id=frame.track_ids[row],
            title=frame.titles[row] or None,
            artist=frame.artists[row] or None,
            score=round(min(max(float(sc), 0.0), 1.0), 6),
            drivers=d,
        )
        for row, sc, d in zip(rows.tolist(), scores, drivers(feats), strict=True)
    ]


@dataclass
class StatusResult:
    user_id: int
    trained: bool
    fallback: bool
    tracks_used: int
    trained_at: str | None
    version: str | None
    last_used_at: datetime | None
    reason: str | None = None


async def status(*, session: AsyncSession, runtime: Runtime, user_id: int) -> StatusResult:
    """What the user's stored model is (or that there is none)."""
    await _user(session, user_id)
    metadata: dict[str, Any] | None = await runtime.run_cpu(
        store.read_user_metadata, runtime.models.root, user_id
    )
    if metadata is None:
        return StatusResult(
            user_id=user_id,
            trained=False,
            fallback=True,
            tracks_used=0,
            trained_at=None,
            version=None,
            last_used_at=None,
        )
    model_path, _ = store.user_paths(runtime.models.root, user_id)
    return StatusResult(
        user_id=user_id,
        trained=True,
        fallback=metadata.get("model") != "personal",
        tracks_used=int(metadata.get("tracks_used", 0)),
        trained_at=metadata.get("trained_at"),
        version=metadata.get("version"),
        last_used_at=model_store.last_used(model_path),
        reason=metadata.get("reason"),
    )
