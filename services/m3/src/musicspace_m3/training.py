"""Training: the global ranker from the DB (held-out users) and per-user fine-tuning."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from musicspace_m3 import ranker, repository
from musicspace_m3.catalog_index import build_catalog_index
from musicspace_m3.features import FEATURE_NAMES
from musicspace_m3.groups import Groups, UserData, split_groups
from musicspace_m3.models import Loaded, global_path, user_model_path
from musicspace_m3.repository import RawUser
from musicspace_m3.settings import Settings
from musicspace_m3.state import (
    Snapshot,
    build_collab_from_users,
    save_snapshot_for_replicas,
    user_data,
)
from musicspace_shared import model_store
from musicspace_shared.catalog import TrackFrame, load_tracks
from musicspace_shared.db.engine import make_engine, make_sessionmaker
from musicspace_shared.sampling import sample_ids

HELD_OUT_SHARE = 0.15


def _log(message: str) -> None:
    print(f"m3: {message}", file=sys.stderr, flush=True)


async def train_global_from_db(*, settings: Settings | None = None) -> dict[str, Any]:
    """Train the global ranker on every DB user, publish it to the M3 volume, and (when
    M3_STATE_ON_VOLUME, on by default) save the snapshot of the catalog and activity as they
    are, so the replicas that start next read it instead of every user's activity (at 1M
    tracks most of a start); return a summary."""
    settings = settings or Settings()
    engine = make_engine(settings)
    try:
        async with make_sessionmaker(engine)() as session:
            _log("loading tracks and users")
            frame = await load_tracks(session)
            users = await repository.load_all_users(session)
        summary = await asyncio.to_thread(train_global, frame=frame, users=users, settings=settings)
        del frame, users  # the snapshot below reads the activity its own way
        async with make_sessionmaker(engine)() as session:
            await repository.record_model(
                session,
                kind="global",
                owner_id=None,
                version=summary["version"],
                path=summary["path"],
                sha256=summary["sha256"],
                rows=summary["rows"],
                metrics=summary["metrics"],
            )
    finally:
        await engine.dispose()
    if settings.state_on_volume:
        _log("saving the snapshot for the replicas")
        summary["snapshot"] = await save_snapshot_for_replicas(settings)
    return summary


def held_out_split(user_ids: list[int], *, seed: int = 7) -> tuple[list[int], list[int]]:
    """Deterministic train / held-out users (15% held out, at least one when there are 5+)."""
    order = np.random.default_rng(seed).permutation(sorted(user_ids)).tolist()
    n_held = int(round(len(order) * HELD_OUT_SHARE)) if len(order) >= 5 else 0
    n_held = max(n_held, 1) if len(order) >= 5 else 0
    return sorted(order[n_held:]), sorted(order[:n_held])


def train_global(
    *, frame: TrackFrame, users: Mapping[int, RawUser], settings: Settings
) -> dict[str, Any]:
    """Fit on the training users' input/target splits, measure NDCG@10 on held-out users, publish."""
    started = time.perf_counter()
    index = build_catalog_index(frame)
    collab = build_collab_from_users(index, users)
    data = {uid: user_data(index, raw) for uid, raw in users.items()}
    data = {uid: d for uid, d in data.items() if len(d.positives) >= 4}
    eligible = len(data)
    data = {uid: data[uid] for uid in sample_ids(data, settings.train_max_users)}
    if len(data) < 2:
        raise ValueError(
            f"m3 needs at least 2 users with 4+ positive tracks to train, found {len(data)}"
        )
    train_ids, held_ids = held_out_split(list(data))
    _log(
        f"{len(index)} tracks, {len(data)} users ({len(train_ids)} train, {len(held_ids)} held out)"
    )
    train = split_groups(
        index=index,
        collab=collab,
        users={u: data[u] for u in train_ids},
        n_candidates=settings.n_candidates,
        splits=settings.train_splits,
        negatives_per_query=settings.train_negatives_per_query,
        seed=7,
    )
    held = split_groups(
        index=index,
        collab=collab,
        users={u: data[u] for u in held_ids},
        n_candidates=settings.n_candidates,
        splits=1,
        seed=11,
    )
    _log(
        f"{train.n_queries} training queries, {len(train.y)} rows; fitting {settings.loss_function} x{settings.iterations}"
    )
    params = settings.ranker_params()
    model = ranker.fit(train, params=params)
    fit_s = time.perf_counter() - started
    metrics = {
        "fit_seconds": round(fit_s, 1),
        "train_candidate_recall": round(train.candidate_recall, 4),
    }
    metrics |= evaluate(model, held)
    _log(f"trained in {fit_s:.1f}s: {metrics}")
    path = global_path(settings.model_dir("M3"), settings.global_model_name)
    meta = _publish(
        model,
        path,
        rows=len(train.y),
        metrics=metrics,
        extra={
            "params": params,
            "features": list(FEATURE_NAMES),
            "n_candidates": settings.n_candidates,
            "users": len(data),
            "eligible_users": eligible,
            "held_out_users": len(held_ids),
            "queries": train.n_queries,
        },
        keep_previous=True,
    )
    _log(f"published {path} version {meta.version}")
    return {
        "path": str(path),
        "version": meta.version,
        "trained_at": meta.trained_at,
        "rows": meta.rows,
        "sha256": meta.sha256,
        "metrics": metrics,
        "params": params,
    }


def evaluate(model: Any, held: Groups) -> dict[str, float]:
    """NDCG@10 on held-out queries for the model and for the candidate prescore alone."""
    if not len(held.y):
        return {"held_out_queries": 0}
    scores = ranker.predict(model, held.x)
    # Candidates arrive in prescore order: their rank within the query is the baseline's score.
    baseline = np.zeros(len(held.y))
    for g in np.unique(held.group):
        rows = np.where(held.group == g)[0]
        baseline[rows] = -np.arange(len(rows))
    return {
        "held_out_queries": held.n_queries,
        "held_out_ndcg@10": round(ranker.ndcg_at(scores, held.y, held.group), 4),
        "held_out_prescore_ndcg@10": round(ranker.ndcg_at(baseline, held.y, held.group), 4),
        "held_out_candidate_recall": round(held.candidate_recall, 4),
    }


def _publish(
    model: Any,
    path: Path,
    *,
    rows: int,
    metrics: dict[str, Any],
    extra: dict[str, Any],
    keep_previous: bool = False,
) -> model_store.ModelMeta:
    meta = model_store.ModelMeta(
        version=model_store.new_version(),
        trained_at=model_store.now_iso(),
        rows=rows,
        metrics=metrics,
        extra=extra,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # CatBoost writes to a path: a temp file on the same volume, then the store publishes it atomically.
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".m3-") as tmp:
        staged = Path(tmp) / "model.cbm"
        model.save_model(str(staged))
        return model_store.publish_file(path, staged, meta, keep_previous=keep_previous)


@dataclass
class FinetuneResult:
    personal: bool
    reason: str | None
    positives: int
    rows: int = 0
    version: str | None = None
    base_version: str | None = None
    trained_at: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    sha256: str | None = None


def finetune_user(
    *, snapshot: Snapshot, base: Loaded, user_id: int, raw: RawUser, settings: Settings
) -> FinetuneResult:
    """Continue the global model on this user's own input/target splits; publish M3/user_models/{id}_.cbm."""
    data: UserData = user_data(snapshot.index, raw)
    n_pos = len(data.positives)
    if n_pos < settings.min_user_positives:
        return FinetuneResult(
            False,
            f"{n_pos} positive tracks; a personal model needs {settings.min_user_positives}: the global model serves",
            n_pos,
            base_version=base.version,
        )
    groups = split_groups(
        index=snapshot.index,
        collab=snapshot.collab,
        users={user_id: data},
        n_candidates=settings.n_candidates,
        splits=settings.finetune_splits,
        negatives_per_query=settings.train_negatives_per_query,
        seed=user_id % (2**32),
    )
    if groups.n_queries == 0 or groups.y.sum() == 0:
        return FinetuneResult(
            False,
            "none of the user's held-back tracks reached the candidates: the global model serves",
            n_pos,
            base_version=base.version,
        )
    params = settings.ranker_params() | {
        "iterations": settings.finetune_iterations,
        "learning_rate": settings.learning_rate / 2,
        "thread_count": 1,
    }
    model = ranker.fit(groups, params=params, init_model=base.model)
    metrics = {
        "train_ndcg@10_global": round(
            ranker.ndcg_at(ranker.predict(base.model, groups.x), groups.y, groups.group), 4
        ),
        "train_ndcg@10_personal": round(
            ranker.ndcg_at(ranker.predict(model, groups.x), groups.y, groups.group), 4
        ),
    }
    meta = _publish(
        model,
        user_model_path(settings.model_dir("M3"), user_id),
        rows=len(groups.y),
        metrics=metrics,
        extra={
            "base_version": base.version,
            "params": params,
            "positives": n_pos,
            "user_id": user_id,
        },
    )
    return FinetuneResult(
        True,
        None,
        n_pos,
        len(groups.y),
        meta.version,
        base.version,
        meta.trained_at,
        metrics,
        meta.sha256,
    )
