"""Row-wise arithmetic whose value for a row does not depend on the other rows of the call.

BLAS mat-vec products (`a @ c`) may round a row's dot product differently by where the row
falls in the kernel's blocks, so scoring a subset of rows (a candidate scan over groups) and
scoring every row could disagree in the last bit and order equal-looking scores differently.
"""

from __future__ import annotations

import numpy as np


def row_dot(a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(a * c).sum(axis=1), bit for bit, a column at a time (5x faster for nine columns).

    The same additions in the same order as NumPy's pairwise sum of a short row: below eight
    terms one after another from -0.0; else eight running sums, combined pairwise, then the
    rest one after another. Each row's value is its own (no BLAS blocking)."""
    if a.shape[1] > 128:  # NumPy splits longer rows in halves: its own sum, then
        return (a * c).sum(axis=1)  # type: ignore[no-any-return]
    terms = [a[:, j] * c[j] for j in range(a.shape[1])]
    if len(terms) < 8:
        return _in_turn(-0.0, terms)
    sums = terms[:8]
    whole = len(terms) - len(terms) % 8
    for start in range(8, whole, 8):
        sums = [s + t for s, t in zip(sums, terms[start : start + 8], strict=True)]
    pairs = ((sums[0] + sums[1]) + (sums[2] + sums[3])) + (
        (sums[4] + sums[5]) + (sums[6] + sums[7])
    )
    return _in_turn(pairs, terms[whole:])


def _in_turn(total: np.ndarray | float, terms: list[np.ndarray]) -> np.ndarray:
    for term in terms:
        total = total + term
    return np.asarray(total)
