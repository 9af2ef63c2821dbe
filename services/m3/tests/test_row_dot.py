"""The candidate scan's row-wise dot product: NumPy's own sums, a column at a time."""

from __future__ import annotations

import numpy as np
import pytest

from musicspace_m3.features import row_dot


@pytest.mark.parametrize("columns", [1, 3, 7, 8, 9, 16, 17, 40, 130])
def test_row_dot_equals_numpys_row_sums_bit_for_bit(columns: int) -> None:
    rng = np.random.default_rng(columns)
    scale = rng.uniform(0.01, 1000.0, columns).astype(np.float32)
    a = rng.standard_normal((4000, columns)).astype(np.float32) * scale
    c = rng.standard_normal(columns).astype(np.float32)
    assert np.array_equal(row_dot(a, c), (a * c).sum(axis=1))
