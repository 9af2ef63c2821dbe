"""Offline evaluation entry point (`musicspace eval playlists`): same code as the service."""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from musicspace_m3 import ranker
from musicspace_m3.catalog_index import build_catalog_index
from musicspace_m3.collab import build_collab
from musicspace_m3.features import Profile
from musicspace_m3.groups import UserData, split_groups
from musicspace_m3.scoring import rank
from musicspace_m3.settings import Settings
from musicspace_shared.catalog import TrackFrame


def recommend_for_eval(
    *,
    frame: TrackFrame,
    train_users: dict[str, list[str]],
    seeds: dict[str, list[str]],
    k: int,
    params: dict[str, Any] | None = None,
) -> dict[str, list[str]]:
    """Train on train_users plus the seeds (input/target splits of each), then rank for each seed set."""
    settings = Settings()
    started = time.perf_counter()
    index = build_catalog_index(frame)
    users: dict[tuple[str, str], UserData] = {}
    empty = np.zeros(0, dtype=np.int64)
    for prefix, source in (("train", train_users), ("eval", seeds)):
        for uid, tracks in source.items():
            users[(prefix, uid)] = UserData(
                positives=frame.rows(tracks), negatives=empty, interactions={}
            )
    collab = build_collab({key: data.positives for key, data in users.items()}, len(index))
    groups = split_groups(
        index=index,
        collab=collab,
        users=users,
        n_candidates=settings.n_candidates,
        splits=settings.train_splits,
        negatives_per_query=settings.train_negatives_per_query,
        seed=7,
    )
    _log(
        f"m3 eval: {groups.n_queries} training queries, {len(groups.y)} rows, candidate recall {groups.candidate_recall:.3f}"
    )
    model = ranker.fit(groups, params={**settings.ranker_params(), **(params or {})})
    _log(f"m3 eval: trained in {time.perf_counter() - started:.1f}s")
    out: dict[str, list[str]] = {}
    for uid, tracks in seeds.items():
        pos = frame.rows(tracks)
        profile = Profile(key=("eval", uid), positives=pos, excluded=pos)
        ranked = rank(
            index=index,
            collab=collab,
            model=model,
            profile=profile,
            n_candidates=settings.n_candidates,
            limit=k,
        )
        out[uid] = [frame.track_ids[p] for p in ranked.positions.tolist()]
    return out


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
