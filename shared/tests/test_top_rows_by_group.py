"""top_rows_by_group: the best rows of a score over groups with upper bounds, exact."""

from __future__ import annotations

import numpy as np
import pytest

from musicspace_shared.catalog import top_rows_by_group


class Groups:
    def __init__(self, codes: np.ndarray) -> None:
        self.rows = [np.flatnonzero(codes == g) for g in range(int(codes.max()) + 1)]

    def rows_of_group(self, group: int) -> np.ndarray:
        return self.rows[group]


@pytest.mark.parametrize("batch_rows", [0, 50, 10_000])
def test_the_best_rows_are_those_of_scoring_everything(batch_rows):
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 40, 2000)
    values = rng.random(2000) + codes * 0.05  # higher groups score more
    bound = np.array([values[codes == g].max() for g in range(40)])
    skip = rng.random(2000) < 0.2
    expected = np.flatnonzero(~skip)
    expected = expected[np.lexsort((expected, -values[expected]))][:30]
    calls = []

    def score(rows):
        calls.append(len(rows))
        return values[rows]

    rows, scores = top_rows_by_group(
        Groups(codes),
        n=30,
        skip=skip.copy(),
        first=np.zeros(0, dtype=np.int64),
        bound=bound,
        score=score,
        batch_rows=batch_rows,
    )
    assert rows.tolist() == expected.tolist()
    assert scores.tolist() == values[expected].tolist()
    if batch_rows < 2000:
        assert sum(calls) < (~skip).sum()  # the low groups were never scored
    else:
        assert len(calls) == 2  # `first`, then every group in one call
