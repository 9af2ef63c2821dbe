"""row_dot: NumPy's own row sums, a column at a time, in float32 and float64."""

from __future__ import annotations

import numpy as np
import pytest

from musicspace_shared.rowwise import row_dot


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("columns", [1, 3, 7, 8, 9, 16, 17, 40, 130])
def test_row_dot_equals_numpys_row_sums_bit_for_bit(columns: int, dtype: type) -> None:
    rng = np.random.default_rng(columns)
    scale = rng.uniform(0.01, 1000.0, columns).astype(dtype)
    a = rng.standard_normal((4000, columns)).astype(dtype) * scale
    a[::97] = np.nan  # tracks without features
    c = rng.standard_normal(columns).astype(dtype)
    got = row_dot(a, c)
    assert got.dtype == dtype
    assert np.array_equal(got, (a * c).sum(axis=1), equal_nan=True)
    # A row's value is its own: the same on any subset of the rows.
    assert np.array_equal(row_dot(a[1::3], c), got[1::3], equal_nan=True)
