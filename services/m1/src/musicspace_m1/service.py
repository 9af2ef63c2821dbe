"""m1 use cases: train a user, recommend for a user, report a user's model status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from musicspace_m1 import repository, store
from musicspace_m1.catalog_index import CatalogIndex
from musicspace_m1.hybrid import GlobalModel, Ranked, cap_per_artist, drivers, rank
from musicspace_m1.profile import NO_AUDIO, build_profile
from musicspace_m1.runtime import Runtime
from musicspace_m1.schemas import RecommendResponse
from musicspace_m1.training import UserTrainingInput, train_user_model
from musicspace_shared import model_store
from musicspace_shared.catalog import load_tracks
from musicspace_shared.errors import ModelNotReady, NotFound


@dataclass
class TrainResult:
    user_id: int
    model: str
    reason: str | None
    tracks_used: int
    version: str
    trained_at: str
    metrics: dict[str, float]


@dataclass
class RecommendItem:
    track_id: str
    title: str | None
    artist: str | None
    score: float
    drivers: dict[str, float]


@dataclass
class RecommendResult:
    user_id: int
    model: str
    version: str | None
    items: list[RecommendItem]


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


async def recommend(
    *,
    session: AsyncSession,
    runtime: Runtime,
    user_id: int,
    limit: int,
    exclude_owned: bool = True,
    max_per_artist: int | None = None,
) -> RenderedRecommendation:
    """Hybrid recommendations without owned (optional) and disliked tracks, capped per artist.

    Every input of the ranking is in the cache key (the user's tracks and dislikes, the global
    and personal model versions, the catalog generation), so a cached answer is exactly what a
    fresh computation would return. Two levels: the ranked candidate list per user state, and
    the rendered body per (state, limit, cap), which spares a repeat request the per-artist
    cap, the drivers and the JSON encoding.
    """
    user = await _user(session, user_id)
    index, model, meta = await _ready(runtime)
    cap = max_per_artist or runtime.settings.max_per_artist
    # A stat() when cached; a reload (after a retrain) unpickles a few kilobytes.
    user_model = runtime.models.user_model(user_id)
    personal_ok = user_model is not None and not user_model.fallback
    state = (
        user_id,
        meta.version,
        user_model.version if user_model is not None else None,
        index.generation,
        exclude_owned,
        hash(frozenset(user.owned)),
        hash(frozenset(user.disliked)),
    )
    served = "personal" if personal_ok else "profile_fallback"
    rendered = runtime.response_cache.get((state, limit, cap))
    if rendered is not None:
        return rendered
    ranked = runtime.ranked_cache.get(state)
    if ranked is None:
        owned = index.frame.rows(user.owned)
        disliked = index.frame.rows(user.disliked)
        excluded = np.concatenate([owned if exclude_owned else owned[:0], disliked])
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
    result = _result(
        index,
        ranked,
        user_id=user_id,
        limit=limit,
        cap=cap,
        served=served,
        version=user_model.version if personal_ok and user_model is not None else meta.version,
    )
    # from_attributes reads the dataclasses as they are (asdict would deep-copy every item).
    body = RecommendResponse.model_validate(result, from_attributes=True).model_dump_json()
    rendered = RenderedRecommendation(model=served, body=body.encode())
    if runtime.response_cache.maxsize:
        runtime.response_cache[(state, limit, cap)] = rendered
    return rendered


def _result(
    index: CatalogIndex,
    ranked: Ranked,
    *,
    user_id: int,
    limit: int,
    cap: int,
    served: str,
    version: str | None,
) -> RecommendResult:
    """The first `limit` ranked tracks under the per-artist cap, with their drivers."""
    order = cap_per_artist(index.artist[ranked.rows], cap, limit)
    frame = index.frame
    rows, scores, feats = ranked.rows[order], ranked.scores[order], ranked.features[order]
    items = [
        RecommendItem(
            track_id=frame.track_ids[row],
            title=frame.titles[row] or None,
            artist=frame.artists[row] or None,
            score=round(float(sc), 6),
            drivers=d,
        )
        for row, sc, d in zip(rows.tolist(), scores, drivers(feats), strict=True)
    ]
    return RecommendResult(user_id=user_id, model=served, version=version, items=items)


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
