"""m2's use cases: predict audio features, similar tracks, per-user recommendations."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from musicspace_m2 import repository
from musicspace_m2.predictor import FeaturePredictor
from musicspace_m2.runtime import Runtime
from musicspace_m2.schemas import (
    PredictItem,
    PredictRequest,
    RecommendedTrack,
    RecommendRequest,
    RecommendResponse,
    SimilarResponse,
    SimilarTrack,
    Strategy,
)
from musicspace_m2.settings import Settings
from musicspace_m2.similar import SIMILARITY_RANGE, ContentSpace, best_distinct
from musicspace_m2.text_features import TrackInputs, inputs_from_rows
from musicspace_m2.user_svm import (
    UserSvm,
    fallback_score,
    fallback_strategy,
    fingerprint,
    svm_score,
    train_user_svm,
    user_seed,
)
from musicspace_shared import selection
from musicspace_shared.background import Submitted
from musicspace_shared.errors import NotFound
from musicspace_shared.features import FEATURES, clip_to_ranges, round_like_measured
from musicspace_shared.model_store import (
    ModelIntegrityError,
    ModelMeta,
    load_pickle,
    new_version,
    now_iso,
    publish_pickle,
    read_meta,
    touch_last_used,
    user_file,
)
from musicspace_shared.recommendation_ids import new_id


def _item_row(item: PredictItem) -> dict[str, object]:
    return {
        "title": item.title,
        "artist": item.artist,
        "album": item.album,
        "genre": item.genre,
        "subgenre": item.subgenre,
        "popularity": item.popularity,
    }


def _has_text(item: PredictItem) -> bool:
    return any(
        value is not None
        for value in (
            item.title,
            item.artist,
            item.album,
            item.genre,
            item.subgenre,
            item.popularity,
        )
    )


def _db_row(table: repository.KnownInputs, position: int, item: PredictItem) -> dict[str, object]:
    inputs = table.inputs
    # What the DB knows wins; the item's own text fills what the DB lacks.
    return {
        "title": inputs.titles[position] or item.title,
        "artist": inputs.artists[position] or item.artist,
        "album": inputs.albums[position] or item.album,
        "album_id": inputs.album_ids[position],
        "genre": inputs.genres[position] or item.genre,
        "subgenre": inputs.subgenres[position] or item.subgenre,
        "popularity": inputs.popularity[position]
        if not np.isnan(inputs.popularity[position])
        else item.popularity,
        "release_date": ""
        if np.isnan(inputs.years[position])
        else str(int(inputs.years[position])),
    }


def predict_results(
    *,
    predictor: FeaturePredictor,
    items: list[PredictItem],
    known: repository.KnownInputs | None = None,
    intervals: bool = True,
) -> list[dict[str, Any]]:
    """Per-item results (PredictResult's fields); an id missing from `known` fails that item only.

    Plain dicts rather than PredictResult objects: building and validating 1,000 models cost
    more than predicting them (measured); the route serialises these with orjson.
    """
    positions = {t: i for i, t in enumerate(known.track_ids)} if known is not None else {}
    db_rows: list[int | None] = []  # per predicted item: its DB row, None for a text item
    slots: list[int] = []
    results: list[dict[str, Any] | None] = [None] * len(items)
    for index, item in enumerate(items):
        position = None
        if item.track_id is not None:
            position = positions.get(item.track_id)
            if position is None:
                results[index] = {
                    "index": index,
                    "track_id": item.track_id,
                    "ok": False,
                    "error": "unknown track id",
                    "features": None,
                    "confidence": None,
                    "intervals": None,
                }
                continue
        db_rows.append(position)
        slots.append(index)
    if slots:
        if known is not None and all(
            p is not None and not _has_text(items[i]) for i, p in zip(slots, db_rows, strict=True)
        ):
            # Bare ids (what enrichment sends): the DB's inputs as they are, no re-building.
            inputs = known.inputs.take(np.array(db_rows, dtype=np.int64))
        else:
            inputs = inputs_from_rows(
                [
                    _item_row(items[i]) if p is None else _db_row(known, p, items[i])  # type: ignore[arg-type]
                    for i, p in zip(slots, db_rows, strict=True)
                ]
            )
        values = round_like_measured(predictor.predict(inputs))
        confidence, half_widths = predictor.uncertainty(inputs)
        bounds = _intervals(values, half_widths) if intervals else [None] * len(slots)
        for k, (index, row_values) in enumerate(zip(slots, values.tolist(), strict=True)):
            results[index] = {
                "index": index,
                "track_id": items[index].track_id,
                "ok": True,
                "error": None,
                "features": dict(zip(FEATURES, row_values, strict=True)),
                "confidence": confidence[k],
                "intervals": bounds[k],
            }
    return [r for r in results if r is not None]


def _intervals(
    values: np.ndarray, half_widths: list[np.ndarray]
) -> list[dict[str, tuple[float, float]] | None]:
    """Per row: each feature's interval (value +- its half width, within the feature's range),
    or None when the model has no half widths for that row's support level."""
    half = np.array(half_widths).reshape(len(values), len(FEATURES))
    low = round_like_measured(clip_to_ranges(values - half)).tolist()
    high = round_like_measured(clip_to_ranges(values + half)).tolist()
    has_interval = (~np.isnan(half).any(axis=1)).tolist()
    return [
        dict(zip(FEATURES, zip(lo, hi, strict=True), strict=True)) if ok else None
        for lo, hi, ok in zip(low, high, has_interval, strict=True)
    ]


def render_predict_response(*, model_version: str, results: list[dict[str, Any]]) -> bytes:
    """The PredictResponse JSON body."""
    return orjson.dumps({"source": "m2", "model_version": model_version, "results": results})


async def predict_audio(
    *, runtime: Runtime, session: AsyncSession, request: PredictRequest
) -> bytes:
    """Predict the 9 features for each item (a DB track id, or artist + title); the JSON body."""
    model = await runtime.require_model()
    ids = sorted({item.track_id for item in request.items if item.track_id is not None})
    known = await repository.load_inputs(session, ids) if ids else None
    # Prediction and rendering in one executor job: as two, a request's rendering queued
    # behind the other requests' predictions and concurrent batches all finished together.
    body, predicted = await runtime.run_cpu(
        _predict_and_render,
        predictor=model.model,
        model_version=model.meta.version,
        items=request.items,
        known=known,
        intervals=request.intervals,
    )
    runtime_metrics_count(runtime, "predictions", predicted)
    return body


def _predict_and_render(*, model_version: str, **kwargs: Any) -> tuple[bytes, int]:
    results = predict_results(**kwargs)
    body = render_predict_response(model_version=model_version, results=results)
    return body, sum(r["ok"] for r in results)


def runtime_metrics_count(runtime: Runtime, event: str, amount: int) -> None:
    if runtime.metrics is not None and amount:
        runtime.metrics.count(event, amount)


async def _space_with(runtime: Runtime, session: AsyncSession, track_id: str) -> ContentSpace:
    space = await runtime.content_space(session)
    if track_id not in space.index:
        # Perhaps imported since the space was built: check the catalog now.
        space = await runtime.content_space(session, force=True)
    return space


def _track_fields(space: ContentSpace, row: int) -> dict[str, str | None]:
    inputs = space.inputs
    return {
        "track_id": space.track_ids[row],
        "title": inputs.titles[row] or None,
        "artist": inputs.artists[row] or None,
        "genre": inputs.genres[row] or None,
        "subgenre": inputs.subgenres[row] or None,
    }


async def similar_tracks(
    *, runtime: Runtime, session: AsyncSession, track_id: str, limit: int
) -> SimilarResponse:
    """Nearest tracks by text and audio, without the track itself and its duplicates."""
    space = await _space_with(runtime, session, track_id)
    row = space.index.get(track_id)
    if row is None:
        raise NotFound(f"unknown track: {track_id}", track_id=track_id)
    hits = await runtime.run_cpu(
        space.similar, row=row, limit=limit, index_min=runtime.settings.candidate_index_min_tracks
    )
    model = await runtime.require_model()
    low, high = SIMILARITY_RANGE
    items = [
        SimilarTrack(**_track_fields(space, i), score=round(float(unit), 6))
        for (i, _), unit in zip(
            hits, selection.unit_score(np.array([sc for _, sc in hits]), low, high), strict=True
        )
    ]
    return SimilarResponse(track_id=track_id, model_version=model.meta.version, items=items)


@dataclass(frozen=True)
class StoredSvm:
    model: UserSvm
    version: str
    current: bool  # fitted on the user's present tracks and this very space


def stored_svm(*, root: Path, space: ContentSpace, user_id: int, fp: str) -> StoredSvm | None:
    """The user's stored SVM when it can score this space (current or not), else None."""
    path = user_file(root, user_id, ".pkl")
    meta = read_meta(path)
    if meta is None:
        return None
    current = meta.extra.get("fingerprint") == fp
    if not current and meta.extra.get("basis", space.basis) != space.basis:
        return None  # fitted on other columns: not worth reading
    try:
        model, meta = load_pickle(path)
    except (ModelIntegrityError, OSError, EOFError, ValueError):
        return None  # corrupt or half-copied: the background training overwrites it
    if not isinstance(model, UserSvm) or not model.fits(space):
        return None
    touch_last_used(path)
    return StoredSvm(model, meta.version, current)


def _fit_unless_current(
    *,
    settings: Settings,
    space: ContentSpace,
    user_id: int,
    positive_ids: list[str],
    dislike_ids: list[str],
    fp: str,
) -> UserSvm | None:
    """The user's SVM on this space, or None when the stored one is already current (another
    replica or an earlier submit trained it) and loads (a corrupt one is replaced)."""
    stored = stored_svm(root=settings.user_svm_root, space=space, user_id=user_id, fp=fp)
    if stored is not None and stored.current:
        return None
    return train_user_svm(
        space=space,
        positive_rows=space_rows(space, positive_ids),
        disliked_rows=space_rows(space, dislike_ids),
        seed=user_seed(user_id),
        negatives_per_positive=settings.negatives_per_positive,
        c=settings.svm_c,
        fp=fp,
    )


def _publish_svm(*, root: Path, user_id: int, model: UserSvm, space: ContentSpace) -> ModelMeta:
    path = user_file(root, user_id, ".pkl")
    meta = publish_pickle(
        path,
        model,
        ModelMeta(
            version=new_version(),
            trained_at=now_iso(),
            rows=model.positives + model.negatives,
            metrics={"train_accuracy": model.train_accuracy},
            extra={
                "fingerprint": model.fingerprint,
                "user_id": user_id,
                "positives": model.positives,
                "negatives": model.negatives,
                "space_version": space.version,
                "basis": space.basis,
            },
        ),
    )
    touch_last_used(path, min_interval_s=0)
    return meta


async def train_svm(
    *, runtime: Runtime, user_id: int, positive_ids: list[str], dislike_ids: list[str]
) -> str | None:
    """Fit and publish the user's SVM on the current space (unless the stored one is current):
    the background queue's work. The fit runs on the training thread; the publish after it,
    in one short step (an erasure meanwhile cancels the work before it)."""
    space = runtime.space
    if space is None:
        return None
    fp = fingerprint(positives=positive_ids, dislikes=dislike_ids, space_version=space.version)
    model = await runtime.train_cpu.run(
        _fit_unless_current,
        settings=runtime.settings,
        space=space,
        user_id=user_id,
        positive_ids=positive_ids,
        dislike_ids=dislike_ids,
        fp=fp,
    )
    if model is None:
        return None
    meta = await asyncio.to_thread(
        _publish_svm, root=runtime.settings.user_svm_root, user_id=user_id, model=model, space=space
    )
    runtime.count("user_svm_trainings")
    return meta.version


def queue_svm_training(
    runtime: Runtime, *, user_id: int, positive_ids: list[str], dislike_ids: list[str]
) -> Submitted:
    """Train the user's SVM behind the request (musicspace_shared.background)."""
    return runtime.svm_training.submit(
        user_id,
        partial(
            train_svm,
            runtime=runtime,
            user_id=user_id,
            positive_ids=positive_ids,
            dislike_ids=dislike_ids,
        ),
    )


def space_rows(space: ContentSpace, track_ids: list[str]) -> np.ndarray:
    return np.array([space.index[t] for t in track_ids if t in space.index], dtype=np.int64)


# How deep m2 ranks for paging and filters: the best this many distinct recordings.
DEPTH = 1000


async def recommend(
    *, runtime: Runtime, session: AsyncSession, request: RecommendRequest
) -> RecommendResponse:
    """Per-user SVM recommendations, or the named fallback, through the shared post-ranking
    steps (filters and exclusions before ranking, then paging).

    No request waits for a training: a user with enough tracks and no SVM that fits the
    content space (a first visit) gets tracks similar to theirs (`fallback_similar_tracks`,
    the reason says so) while their SVM is trained behind the request; the next visit uses it.
    An SVM fitted before the user's tracks changed keeps serving (exclusions are always the
    present ones) while the new one is trained."""
    user_id = request.user_id
    taste = await repository.load_user_taste(session, user_id)
    if taste is None:
        raise NotFound(f"unknown user: {user_id}", user_id=user_id)
    space = await runtime.content_space(session)
    space_key = runtime.space_key  # read with the space (no await between): the catalog state
    # Nothing below reads the DB: give the connection back before the CPU work.
    await session.close()
    model = await runtime.require_model()
    settings = runtime.settings
    positives = sorted((set(taste.owned) | taste.liked) - taste.disliked)
    dislikes = sorted(taste.disliked)
    positive_rows = space_rows(space, positives)
    # Their own tracks (and their duplicates under other ids) unless asked; dislikes always.
    excluded = sorted(set(taste.owned) | taste.liked | taste.disliked)
    exclude = space_rows(space, excluded if request.exclude_owned else dislikes)
    user_data = fingerprint(positives=positives, dislikes=dislikes, space_version=space.version)
    stored: StoredSvm | None = None
    reason = None
    if len(positive_rows) >= settings.min_tracks_for_svm:
        # A stat and, when there is one, a read of a few hundred kilobytes.
        stored = await asyncio.to_thread(
            stored_svm, root=settings.user_svm_root, space=space, user_id=user_id, fp=user_data
        )
        if stored is None or not stored.current:
            queued = queue_svm_training(
                runtime, user_id=user_id, positive_ids=positives, dislike_ids=dislikes
            )
            if stored is None:
                reason = (
                    f"{len(positive_rows)} track(s) known; the personal model is being trained "
                    "(the next visit uses it): tracks similar to the user's meanwhile"
                    if queued != "dropped"
                    else f"{len(positive_rows)} track(s) known; the personal model's training "
                    "queue is full (asked again on the next visit): tracks similar to the user's"
                )
    else:
        reason = f"{len(positive_rows)} track(s) known; a personal model needs {settings.min_tracks_for_svm}"
    strategy: Strategy = "personal_svm" if stored is not None else fallback_strategy(positive_rows)
    version = (space.version, space_key, strategy, user_data)
    rows, unit, page = await runtime.run_cpu(
        _page,
        space,
        stored.model if stored is not None else positive_rows,
        strategy=strategy,
        exclude=exclude,
        request=request,
        version=version,
        index_min=settings.candidate_index_min_tracks,
    )
    items = [
        RecommendedTrack(**_track_fields(space, row), score=round(score, 6))
        for row, score in zip(rows.tolist(), unit.tolist(), strict=True)
    ]
    return RecommendResponse(
        user_id=user_id,
        recommendation_id=new_id("m2"),
        next_cursor=page.next_cursor,
        strategy=strategy,
        fallback=strategy != "personal_svm",
        reason=reason,  # type: ignore[arg-type]
        tracks_used=len(positive_rows),
        model_version=model.meta.version,
        svm_version=stored.version if stored is not None else None,
        items=items,
    )


def _page(
    space: ContentSpace,
    scorer: UserSvm | np.ndarray,
    *,
    strategy: str,
    exclude: np.ndarray,
    request: RecommendRequest,
    version: tuple[object, ...],
    index_min: int,
) -> tuple[np.ndarray, np.ndarray, selection.Page]:
    """The page's rows and 0..1 scores: the best rows (by the SVM, or the fallback from the
    user's rows; through the candidate index from `index_min` tracks up), filters before
    ranking, then the shared steps."""
    score = svm_score(scorer) if isinstance(scorer, UserSvm) else fallback_score(space, scorer)
    mask = selection.allowed(space.columns, request)
    hits = best_distinct(
        space, score, exclude_rows=exclude, limit=DEPTH, mask=mask, index_min=index_min
    )
    ranked = np.array([row for row, _ in hits], dtype=np.int64)
    raw = np.array([score for _, score in hits], dtype=np.float64)
    page = selection.take_page(
        ranked, columns=space.columns, request=request, source="m2", version=version, mask=mask
    )
    return ranked[page.positions], unit_scores(strategy, raw[page.positions]), page


def unit_scores(strategy: str, raw: np.ndarray) -> np.ndarray:
    """The 0..1 score of RecommendedTrack for each strategy's raw score (order kept)."""
    if strategy == "personal_svm":
        return selection.logistic(raw)
    if strategy == "fallback_similar_tracks":  # similarity + 0.05 x popularity
        low, high = SIMILARITY_RANGE
        return selection.unit_score(raw, low, high + 0.05)
    return selection.unit_score(raw, 0.0, 1.0)  # popularity, already 0..1


def inputs_for_text(items: list[PredictItem]) -> TrackInputs:
    """Inputs for text-only items (benchmarks and tools)."""
    return inputs_from_rows([_item_row(item) for item in items])
