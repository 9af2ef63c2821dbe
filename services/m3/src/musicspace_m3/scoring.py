"""Rank one user's candidates with a model: the path every recommendation takes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from catboost import CatBoost

from musicspace_m3 import ranker
from musicspace_m3.catalog_index import CatalogIndex
from musicspace_m3.collab import Collab
from musicspace_m3.features import Profile, candidates, feature_matrix, user_stats


@dataclass
class Ranked:
    positions: np.ndarray  # catalog positions, best first
    scores: np.ndarray
    x: np.ndarray  # feature rows of the returned positions (for explanations)
    reference: np.ndarray  # median feature row over all candidates (the explanations' baseline)
    n_candidates: int


def rank(
    *,
    index: CatalogIndex,
    collab: Collab,
    model: CatBoost,
    profile: Profile,
    n_candidates: int,
    limit: int,
    max_per_artist: int | None = None,
) -> Ranked:
    """Candidates -> features -> CatBoost scores -> top `limit` with at most N per artist."""
    stats = user_stats(index, collab, profile)
    cands = candidates(index, stats, profile, limit=n_candidates)
    if cands.size == 0:
        return Ranked(cands, np.zeros(0), np.zeros((0, 0), np.float32), np.zeros(0, np.float32), 0)
    x = feature_matrix(index, stats, profile, cands)
    scores = ranker.predict(model, x)
    # Equal scores keep the candidates' order (prescore, then catalog position): an order
    # that does not depend on how the candidates were found.
    order = np.argsort(-scores, kind="stable")
    if max_per_artist is not None:
        order = cap_per_artist(order, index.artist[cands], max_per_artist, limit)
    top = order[:limit]
    return Ranked(
        cands[top], scores[top], x[top], np.median(x, axis=0).astype(np.float32), int(cands.size)
    )


def cap_per_artist(order: np.ndarray, artists: np.ndarray, cap: int, limit: int) -> np.ndarray:
    """Keep ranked rows while no artist exceeds `cap`, until `limit` rows are kept."""
    seen: dict[int, int] = {}
    kept = []
    for row in order.tolist():
        a = int(artists[row])
        if seen.get(a, 0) >= cap:
            continue
        seen[a] = seen.get(a, 0) + 1
        kept.append(row)
        if len(kept) >= limit:
            break
    return np.asarray(kept, dtype=np.int64)
