"""Baselines for `musicspace eval playlists`: popularity, metadata affinity and implicit ALS.

Each baseline has the model interface of the evaluation contract:
`(*, frame, train_users, seeds, k) -> {user: top-k track ids, seeds excluded}`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

from musicspace_shared.catalog import TrackFrame

Users = Mapping[str, list[str]]


def codes(values: list[str]) -> tuple[np.ndarray, int]:
    """Integer codes for string labels (empty string is its own code, never shared meaningfully)."""
    uniques, inverse = np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)
    return inverse.astype(np.int64), len(uniques)


def popularity_vector(frame: TrackFrame) -> np.ndarray:
    """Spotify popularity with unknown values ranked last."""
    return np.nan_to_num(frame.popularity, nan=-1.0)


def top_k_excluding(scores_by_key: list[np.ndarray], exclude: np.ndarray, k: int) -> np.ndarray:
    """Row positions of the k best tracks, lexicographic over the score arrays (first is primary).

    Ties fall back to catalog order, so results are deterministic.
    """
    keys = [np.asarray(s, dtype=np.float64).copy() for s in scores_by_key]
    keys[0][exclude] = -np.inf
    order = np.lexsort(tuple(-key for key in reversed(keys)))
    keep = order[~np.isin(order, exclude)] if len(exclude) else order
    return keep[:k]


def _share(codes_: np.ndarray, rows: np.ndarray, size: int) -> np.ndarray:
    """Per catalog row: the share of the user's rows that carry the same code."""
    counts = np.bincount(codes_[rows], minlength=size).astype(np.float64)
    return counts[codes_] / max(len(rows), 1)


def popularity(
    *, frame: TrackFrame, train_users: Users, seeds: Users, k: int
) -> dict[str, list[str]]:
    """The most popular tracks the user does not hold."""
    pop = popularity_vector(frame)
    return {u: _ids(frame, top_k_excluding([pop], frame.rows(s), k)) for u, s in seeds.items()}


def subgenre_popularity(
    *, frame: TrackFrame, train_users: Users, seeds: Users, k: int
) -> dict[str, list[str]]:
    """Tracks of the user's subgenres (by share), then by popularity."""
    pop = popularity_vector(frame)
    sub, n_sub = codes(frame.subgenres)
    out = {}
    for user, tracks in seeds.items():
        rows = frame.rows(tracks)
        out[user] = _ids(frame, top_k_excluding([_share(sub, rows, n_sub), pop], rows, k))
    return out


def artist_subgenre_popularity(
    *, frame: TrackFrame, train_users: Users, seeds: Users, k: int
) -> dict[str, list[str]]:
    """Artist share plus subgenre share (artists dominate), then popularity."""
    pop = popularity_vector(frame)
    art, n_art = codes(frame.artists)
    sub, n_sub = codes(frame.subgenres)
    out = {}
    for user, tracks in seeds.items():
        rows = frame.rows(tracks)
        score = _share(art, rows, n_art) + _share(sub, rows, n_sub)
        out[user] = _ids(frame, top_k_excluding([score, pop], rows, k))
    return out


def implicit_als(
    *,
    frame: TrackFrame,
    train_users: Users,
    seeds: Users,
    k: int,
    factors: int = 64,
    reg: float = 0.1,
    alpha: float = 20.0,
    iterations: int = 15,
    seed: int = 7,
) -> dict[str, list[str]]:
    """Implicit-feedback ALS (Hu, Koren, Volinsky 2008) over train users and eval seeds."""
    names = [f"train:{u}" for u in train_users] + [f"eval:{u}" for u in seeds]
    lists = list(train_users.values()) + list(seeds.values())
    rows_i, cols_i = [], []
    for i, tracks in enumerate(lists):
        cols = np.unique(frame.rows(tracks))
        rows_i.append(np.full(len(cols), i))
        cols_i.append(cols)
    r = np.concatenate(rows_i) if rows_i else np.zeros(0, np.int64)
    c = np.concatenate(cols_i) if cols_i else np.zeros(0, np.int64)
    matrix = sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(names), len(frame)))
    rng = np.random.default_rng(seed)
    user_f = rng.normal(0, 0.01, (matrix.shape[0], factors))
    item_f = rng.normal(0, 0.01, (matrix.shape[1], factors))
    transposed = matrix.T.tocsr()
    for _ in range(iterations):
        user_f = _als_half_step(matrix, item_f, reg, alpha)
        item_f = _als_half_step(transposed, user_f, reg, alpha)
    offset = len(train_users)
    out = {}
    for j, (user, tracks) in enumerate(seeds.items()):
        scores = item_f @ user_f[offset + j]
        out[user] = _ids(frame, top_k_excluding([scores], frame.rows(tracks), k))
    return out


def _als_half_step(
    matrix: sp.csr_matrix, other: np.ndarray, reg: float, alpha: float
) -> np.ndarray:
    """Exact least-squares update of one side for binary preferences.

    x = (G + a Y'Y)^-1 (1+a) Y'1 with G = O'O + reg*I and Y the m rows a row interacted with.
    Rows hold few interactions (m << factors for tracks), so the Woodbury identity turns each
    solve into an m x m one; rows are batched by m so numpy does the loops.
    """
    n, f = matrix.shape[0], other.shape[1]
    gram_inv = np.linalg.inv(other.T @ other + reg * np.eye(f))
    out = np.zeros((n, f))
    indptr, indices = matrix.indptr, matrix.indices
    counts = np.diff(indptr)
    for m in np.unique(counts[counts > 0]):
        rows = np.flatnonzero(counts == m)
        cols = indices[indptr[rows][:, None] + np.arange(m)[None, :]]
        ys = other[cols]  # (r, m, f)
        g_b = (1.0 + alpha) * ys.sum(axis=1) @ gram_inv  # G^-1 b
        p = ys @ gram_inv  # Y G^-1
        inner = np.eye(m)[None] / alpha + p @ ys.transpose(0, 2, 1)
        rhs = ys @ g_b[:, :, None]  # Y G^-1 b
        out[rows] = g_b - (p.transpose(0, 2, 1) @ np.linalg.solve(inner, rhs))[:, :, 0]
    return out


def _ids(frame: TrackFrame, rows: np.ndarray) -> list[str]:
    return [frame.track_ids[int(i)] for i in rows]


BASELINES = {
    "popularity": popularity,
    "subgenre_popularity": subgenre_popularity,
    "artist_subgenre_popularity": artist_subgenre_popularity,
    "implicit_als": implicit_als,
}
