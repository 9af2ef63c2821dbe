"""A deterministic sample of users for training a global model on a large database.

A global model learns one function of (user profile, track) features; past a few thousand
users more queries add rows, not knowledge, while training time grows with users x catalog
(each query ranks candidates over the whole catalog). The sample is seeded and taken over the
sorted ids, so the same users give the same sample on every run.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def sample_ids(ids: Iterable[int], limit: int | None, *, seed: int = 7) -> list[int]:
    """`limit` of the ids (all when there are no more than that, or limit is None), sorted."""
    ordered = sorted(ids)
    if limit is None or len(ordered) <= limit:
        return ordered
    picked = np.random.default_rng(seed).choice(len(ordered), size=limit, replace=False)
    return [ordered[i] for i in sorted(picked.tolist())]
