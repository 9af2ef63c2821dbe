"""`musicspace eval playlists`: m1, m2, m3 and baselines on held-out halves of playlists.

The contract (DESIGN.md, "Evaluation contract"): every playlist in FILE with >= 10 catalog
tracks becomes an eval user seeded with a random half of its tracks (seed 7); the other half is
held out. Models train on the catalog, the playlists the project ships minus any playlist id
in FILE (`train_users`), and the eval users' seeds; they recommend from the whole catalog minus
the seeds. Metrics: NDCG@10, recall@50 and R-precision, averaged over eval users.

A model plugs in as `musicspace_<name>.evaluation.recommend_for_eval(*, frame, train_users,
seeds, k) -> {user: top-k track ids}`; the split and metric functions here are public so the
model packages can reuse them for their own tuning. The `blend` row is /api/recommend's fusion
(`musicspace_recommend.evaluation.blend_for_eval`) over the rankings m1, m2 and m3 gave the
same users in this run (they are computed for it when not asked for themselves).
"""

from __future__ import annotations

import importlib
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from musicspace_cli.demo_data import DEMO_PLAYLISTS
from musicspace_cli.eval_baselines import BASELINES
from musicspace_shared.catalog import TrackFrame, read_catalog_csv, read_playlists_csv

logger = logging.getLogger("musicspace.eval")

SEED = 7
MIN_TRACKS = 10
MODELS = ("m1", "m2", "m3")
BLEND = "blend"
ALL_NAMES = (*MODELS, BLEND, *BASELINES)
Recommender = Callable[..., dict[str, list[str]]]


@dataclass
class Split:
    """Eval users: seeds (what a model sees) and holdout (what it should find)."""

    seeds: dict[str, list[str]]
    holdout: dict[str, list[str]]


def split_playlists(
    playlists: Mapping[str, list[str]],
    *,
    known: Iterable[str] | Mapping[str, Any],
    seed: int = SEED,
    min_tracks: int = MIN_TRACKS,
) -> Split:
    """Seed each playlist with >= min_tracks known tracks with a random half of them.

    The random generator is seeded per playlist (seed and playlist id), so one playlist's split
    does not depend on which other playlists the file holds or their order.
    """
    known_ids = known if isinstance(known, Mapping) else set(known)
    seeds: dict[str, list[str]] = {}
    holdout: dict[str, list[str]] = {}
    for playlist_id in sorted(playlists):
        tracks = list(dict.fromkeys(t for t in playlists[playlist_id] if t in known_ids))
        if len(tracks) < min_tracks:
            continue
        rng = random.Random(f"{seed}:{playlist_id}")
        chosen = set(rng.sample(tracks, len(tracks) // 2))
        seeds[playlist_id] = [t for t in tracks if t in chosen]
        holdout[playlist_id] = [t for t in tracks if t not in chosen]
    return Split(seeds=seeds, holdout=holdout)


def training_users(
    shipped: Mapping[str, list[str]], *, exclude: Iterable[str], known: Mapping[str, Any]
) -> dict[str, list[str]]:
    """The shipped playlists not in the eval file, restricted to catalog tracks."""
    skip = set(exclude)
    users = {}
    for playlist_id in sorted(shipped):
        if playlist_id in skip:
            continue
        tracks = list(dict.fromkeys(t for t in shipped[playlist_id] if t in known))
        if tracks:
            users[playlist_id] = tracks
    return users


def ndcg_at_k(recommended: list[str], relevant: set[str], k: int = 10) -> float:
    """Binary-relevance NDCG@k."""
    dcg = sum(1.0 / math.log2(i + 2) for i, t in enumerate(recommended[:k]) if t in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return dcg / ideal if ideal else 0.0


def recall_at_k(recommended: list[str], relevant: set[str], k: int = 50) -> float:
    return len(set(recommended[:k]) & relevant) / len(relevant) if relevant else 0.0


def r_precision(recommended: list[str], relevant: set[str]) -> float:
    """Hits in the top R, over R (R = number of relevant tracks)."""
    r = len(relevant)
    return len(set(recommended[:r]) & relevant) / r if r else 0.0


def score_recommendations(
    recommendations: Mapping[str, list[str]], holdout: Mapping[str, list[str]]
) -> dict[str, float]:
    """Mean NDCG@10, recall@50 and R-precision over eval users (a missing user scores 0)."""
    totals = {"ndcg@10": 0.0, "recall@50": 0.0, "r_precision": 0.0}
    for user, held in holdout.items():
        relevant = set(held)
        recs = recommendations.get(user, [])
        totals["ndcg@10"] += ndcg_at_k(recs, relevant, 10)
        totals["recall@50"] += recall_at_k(recs, relevant, 50)
        totals["r_precision"] += r_precision(recs, relevant)
    n = max(len(holdout), 1)
    return {name: round(value / n, 4) for name, value in totals.items()}


def required_k(split: Split) -> int:
    """How many recommendations every metric needs (R-precision may need more than 50)."""
    return max([50, *(len(h) for h in split.holdout.values())])


def load_recommender(name: str) -> Recommender:
    """A baseline by name, or musicspace_<name>.evaluation.recommend_for_eval."""
    if name in BASELINES:
        return BASELINES[name]
    module = importlib.import_module(f"musicspace_{name}.evaluation")
    return module.recommend_for_eval


def rank_model(
    recommend: Recommender,
    *,
    frame: TrackFrame,
    train_users: dict[str, list[str]],
    split: Split,
    k: int,
) -> dict[str, list[str]]:
    """Run one recommender on the split; seeds are removed again and lists cut to k."""
    recs = recommend(frame=frame, train_users=train_users, seeds=split.seeds, k=k)
    cleaned = {}
    for user, tracks in recs.items():
        owned = set(split.seeds.get(user, ()))
        cleaned[user] = [t for t in tracks if t not in owned][:k]
    return cleaned


def _blend(rankings: Mapping[str, dict[str, list[str]]], k: int) -> dict[str, list[str]]:
    from musicspace_recommend.evaluation import blend_for_eval

    return blend_for_eval(rankings, k=k)


def run(
    *,
    catalog: Path,
    playlists: Path,
    models: Iterable[str] | None = None,
    shipped_playlists: Path = DEMO_PLAYLISTS,
    rankings: dict[str, dict[str, list[str]]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Evaluate the chosen models (default: all) and baselines on FILE; deterministic.

    rankings, when given, receives every model's cleaned rankings and the split's holdout
    (under "_holdout"): what tuning the blend needs, without training again."""
    names = list(models) if models else list(ALL_NAMES)
    unknown = [n for n in names if n not in ALL_NAMES]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {list(ALL_NAMES)}")
    frame = read_catalog_csv(catalog)
    eval_lists = read_playlists_csv(playlists)
    split = split_playlists(eval_lists, known=frame.index)
    if not split.seeds:
        raise ValueError(f"no playlist in {playlists} has >= {MIN_TRACKS} catalog tracks")
    train_users = training_users(
        read_playlists_csv(shipped_playlists), exclude=eval_lists, known=frame.index
    )
    k = required_k(split)
    logger.info("eval users=%d train users=%d k=%d", len(split.seeds), len(train_users), k)
    ranked: dict[str, dict[str, list[str]]] = {} if rankings is None else rankings
    ranked["_holdout"] = split.holdout
    wanted = [n for n in names if n != BLEND]
    if BLEND in names:
        wanted += [m for m in MODELS if m not in wanted]
    results: dict[str, dict[str, Any]] = {}
    for name in wanted:
        started = time.perf_counter()
        ranked[name] = rank_model(
            load_recommender(name), frame=frame, train_users=train_users, split=split, k=k
        )
        if name in names:
            results[name] = score_recommendations(ranked[name], split.holdout)
        logger.info("%s done in %.1fs", name, time.perf_counter() - started)
    if BLEND in names:
        results[BLEND] = score_recommendations(
            _blend({m: ranked[m] for m in MODELS}, k), split.holdout
        )
    return {name: results[name] for name in names}
