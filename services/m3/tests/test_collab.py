"""Co-occurrence over the profile's listeners only equals the whole-matrix products it
replaced (so rankings and the evaluation do not move)."""

from __future__ import annotations

import numpy as np

from musicspace_m3.collab import build_collab


def _whole_matrix(collab, positives, exclude):  # type: ignore[no-untyped-def]
    """The former computation: two products over every stored entry."""
    vec = np.zeros(collab.matrix.shape[1], dtype=np.float32)
    vec[positives] = 1.0
    overlap = collab.matrix @ vec
    row = collab.row_of.get(exclude)
    if row is not None:
        overlap[row] = 0.0
    weight = overlap / np.sqrt(np.maximum(collab.user_size, 1.0) * max(len(positives), 1))
    both = collab.matrix_t @ np.stack(
        [(overlap > 0).astype(np.float32), weight.astype(np.float32)], axis=1
    )
    return overlap, weight, both[:, 0], both[:, 1]


def test_cooccurrence_equals_the_whole_matrix_products() -> None:
    rng = np.random.default_rng(3)
    n_tracks = 500
    users = {u: rng.choice(n_tracks, size=rng.integers(1, 60), replace=False) for u in range(300)}
    collab = build_collab(users, n_tracks)
    for key in (5, 17, "stranger"):
        positives = users.get(key, rng.choice(n_tracks, size=30))
        positives = np.r_[positives, positives[:3]]  # a repeat counts once
        overlap, weight = collab.neighbours(positives, exclude=key)
        users_c, weight_c, held = collab.cooccurrence(positives, exclude=key)
        assert np.array_equal(held, np.flatnonzero(weight_c))
        want = _whole_matrix(collab, positives, key)
        assert np.array_equal(overlap, want[0]) and np.array_equal(weight, want[1])
        assert np.array_equal(users_c, want[2]) and np.allclose(weight_c, want[3], rtol=1e-6)
        assert users_c.sum() > 0


def test_no_positives_no_neighbours() -> None:
    collab = build_collab({1: [0, 1], 2: [1, 2]}, 4)
    users, weight, held = collab.cooccurrence(np.zeros(0, dtype=np.int64), exclude=1)
    assert not users.any() and not weight.any()
