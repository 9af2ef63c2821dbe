"""The k best of a catalog-long score array, without sorting or partitioning all of it.

A partition of a million floats costs ~10 ms (argpartition of the negated array, a copy, more);
a compare over them about 1 ms. The k-th largest of an evenly spread sample is at most the
whole's k-th largest, so the few values at or above it hold the answer.
"""

from __future__ import annotations

import numpy as np


def kth_largest(values: np.ndarray, k: int) -> float:
    """The k-th largest value (1 <= k <= len(values))."""
    sample = values[:: max(1, len(values) // (64 * k))]
    if len(sample) >= 8 * k:
        floor = np.partition(sample, len(sample) - k)[len(sample) - k]
        if floor == -np.inf:  # a sample mostly filtered out bounds nothing: drop those instead
            kept = values[values > -np.inf]
            if len(kept) < k:
                return -np.inf
            values = kept
        else:
            values = values[values >= floor]
    return float(np.partition(values, len(values) - k)[len(values) - k])


def top_rows(values: np.ndarray, depth: int) -> np.ndarray:
    """The rows of the `depth` largest values above -inf (fewer when fewer are), ascending;
    among equal values at the cut, the lowest rows."""
    finite = values > -np.inf
    count = int(np.count_nonzero(finite))
    if count <= depth:
        return np.flatnonzero(finite)
    cut = kth_largest(values, depth)
    above = np.flatnonzero(values > cut)
    ties = np.flatnonzero(values == cut)[: depth - len(above)]
    return np.union1d(above, ties)
