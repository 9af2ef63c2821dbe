"""Training groups: one query per (user, split), candidates labelled by a held-out target set.

The same protocol serves the global model, the per-user fine-tuning and the evaluation: a
user's known positives are split into an input half (the profile) and a target half (what the
ranker must find among the candidates), exactly like a held-out playlist at test time.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

import numpy as np

from musicspace_m3.catalog_index import CatalogIndex
from musicspace_m3.collab import Collab
from musicspace_m3.features import Profile, candidates, feature_matrix, user_stats


@dataclass
class Groups:
    """Rows for a ranker: features, labels (0/1) and the query id of each row."""

    x: np.ndarray
    y: np.ndarray
    group: np.ndarray
    targets_total: int  # targets over all queries (candidate recall = hits / total)
    targets_found: int

    @property
    def n_queries(self) -> int:
        return int(len(np.unique(self.group))) if len(self.group) else 0

    @property
    def candidate_recall(self) -> float:
        return self.targets_found / max(self.targets_total, 1)


@dataclass
class UserData:
    """A user's positives (PMS, likes, plays), explicit negatives (dislikes, skips), interactions."""

    positives: np.ndarray
    negatives: np.ndarray
    interactions: Mapping[int, tuple[int, int, int]]


def split_groups(
    *,
    index: CatalogIndex,
    collab: Collab,
    users: Mapping[Hashable, UserData],
    n_candidates: int,
    splits: int = 1,
    negatives_per_query: int | None = None,
    seed: int = 0,
    min_positives: int = 4,
) -> Groups:
    """Build labelled query groups from users' positives by random input/target splits."""
    rng = np.random.default_rng(seed)
    xs, ys, gs = [], [], []
    total = found = 0
    qid = 0
    for key, data in users.items():
        pos = np.unique(data.positives)
        if len(pos) < min_positives:
            continue
        for _ in range(splits):
            perm = rng.permutation(pos)
            half = len(perm) // 2
            inputs, targets = perm[:half], perm[half:]
            # A target's own interactions would give it away: the ranker must find it without them.
            hidden = set(targets.tolist())
            profile = Profile(
                key=key,
                positives=inputs,
                excluded=np.union1d(
                    inputs, data.negatives[np.isin(data.negatives, targets, invert=True)]
                ),
                interactions={p: v for p, v in data.interactions.items() if p not in hidden},
            )
            x, y, hits = label_query(
                index=index,
                collab=collab,
                profile=profile,
                targets=targets,
                negatives=data.negatives,
                n_candidates=n_candidates,
            )
            total += len(targets)
            found += hits
            if y.sum() == 0:
                continue
            if negatives_per_query is not None and (y == 0).sum() > negatives_per_query:
                neg_rows = np.where(y == 0)[0]
                keep = np.concatenate(
                    [np.where(y > 0)[0], rng.choice(neg_rows, negatives_per_query, replace=False)]
                )
                keep.sort()
                x, y = x[keep], y[keep]
            xs.append(x)
            ys.append(y)
            gs.append(np.full(len(y), qid, dtype=np.int64))
            qid += 1
    if not xs:
        return Groups(
            np.zeros((0, 0), np.float32), np.zeros(0), np.zeros(0, np.int64), total, found
        )
    return Groups(np.vstack(xs), np.concatenate(ys), np.concatenate(gs), total, found)


def label_query(
    *,
    index: CatalogIndex,
    collab: Collab,
    profile: Profile,
    targets: np.ndarray,
    negatives: np.ndarray,
    n_candidates: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Features and labels of one query's candidates; explicit negatives join the candidates."""
    stats = user_stats(index, collab, profile)
    cands = candidates(index, stats, profile, limit=n_candidates)
    extra = np.setdiff1d(negatives, cands)
    if extra.size:
        cands = np.concatenate([cands, extra])
    x = feature_matrix(index, stats, profile, cands)
    y = np.isin(cands, targets).astype(np.float64)
    return x, y, int(y.sum())
