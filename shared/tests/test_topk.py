"""The k best of a score array: the same as sorting all of it."""

from __future__ import annotations

import numpy as np

from musicspace_shared.topk import kth_largest, top_rows


def _values(rng: np.random.Generator, n: int) -> np.ndarray:
    values = rng.random(n).round(int(rng.integers(1, 4)))  # ties
    values[rng.random(n) < rng.choice([0.0, 0.3, 0.99])] = -np.inf  # filtered out
    return values


def test_kth_largest_matches_a_full_partition() -> None:
    rng = np.random.default_rng(1)
    for _ in range(500):
        n = int(rng.integers(1, 5000))
        values = _values(rng, n)
        k = int(rng.integers(1, min(n, 60) + 1))
        assert kth_largest(values, k) == np.partition(values, n - k)[n - k]


def test_top_rows_are_the_best_with_the_lowest_rows_at_a_tie() -> None:
    rng = np.random.default_rng(2)
    for _ in range(300):
        n = int(rng.integers(1, 5000))
        values = _values(rng, n)
        depth = int(rng.integers(1, 200))
        # Best first, then the lower row: the first `depth` that are above -inf.
        order = np.lexsort((np.arange(n), -values))
        expected = np.sort(order[: min(depth, int((values > -np.inf).sum()))])
        assert top_rows(values, depth).tolist() == expected.tolist()
