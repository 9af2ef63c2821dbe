"""Reciprocal rank fusion: how /api/recommend (and the eval's `blend` row) merges rankings.

Each model adds, for every track it ranks, `weight / (k + rank)` (rank from 1), and a track's
fused score is the sum over the models that ranked it (Cormack, Clarke and Buettcher, SIGIR
2009, https://doi.org/10.1145/1571941.1572114). Only ranks are read, so models whose scores
live on different scales (m1 a cosine, m2 SVM margins, llm 0.15..1.1) mix without
calibration. k damps the head: the larger k, the more a track that several models rank well
beats one that a single model ranks first (k = 60 in the paper; RECOMMEND_RRF_K).

The score in an answer is the fused score normalised to [0, 1]: divided by the score a track
ranked first by every model that contributed would get (the sum of their weights over k + 1).
1.0 means "first for every model"; a track only one of two equally weighted models ranked
r-th scores (k + 1) / (2 (k + r)). Scores compare tracks within one answer, not across answers.

Pure functions, no I/O: the service and `musicspace eval playlists` run the same code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Fused:
    track_id: str
    score: float  # normalised fused score, 0..1
    ranks: dict[str, int] = field(default_factory=dict)  # model -> 1-based rank in its list


def fuse(
    rankings: Mapping[str, Sequence[str]],
    *,
    k: float = 60.0,
    weights: Mapping[str, float] | None = None,
    depth: int | None = None,
    restrict_to: str | None = None,
) -> list[Fused]:
    """Fuse each model's ranking (best first) into one list, best first.

    weights: per model (default 1.0; a model with weight 0 is ignored). depth: only each list's
    top `depth` count. restrict_to: keep only the tracks that model ranked (the others only
    re-rank them; used for a query, where llm's answer is the candidate set). Ties: more
    models, then the better best rank, then the track id, so the order is deterministic.
    """
    if k <= 0:
        raise ValueError("k must be positive")
    weights = weights or {}
    scores: dict[str, float] = {}
    ranks: dict[str, dict[str, int]] = {}
    contributing = 0.0
    for model, ranking in rankings.items():
        weight = weights.get(model, 1.0)
        if weight < 0:
            raise ValueError(f"weight of {model} must not be negative")
        if weight == 0 or not ranking:
            continue
        contributing += weight
        seen: set[str] = set()
        for rank, track_id in enumerate(ranking[:depth] if depth else ranking, start=1):
            if track_id in seen:
                continue
            seen.add(track_id)
            scores[track_id] = scores.get(track_id, 0.0) + weight / (k + rank)
            ranks.setdefault(track_id, {})[model] = rank
    if restrict_to is not None and rankings.get(restrict_to):
        scores = {t: s for t, s in scores.items() if restrict_to in ranks[t]}
    if not scores:
        return []
    best = contributing / (k + 1)
    order = sorted(scores, key=lambda t: (-scores[t], -len(ranks[t]), min(ranks[t].values()), t))
    return [Fused(t, min(1.0, scores[t] / best), ranks[t]) for t in order]
