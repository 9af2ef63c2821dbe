"""Products of the query with the catalog's vectors: the same values whichever path a row takes."""

from __future__ import annotations

import numpy as np

from musicspace_llm.search import exact_products, row_products


def _unit(rows: int, dim: int = 64, seed: int = 3) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_exact_products_do_not_depend_on_where_a_row_sits() -> None:
    vectors, query = _unit(3000), _unit(1, seed=9)[0]
    rows = np.arange(0, 3000, 7)
    together = exact_products(vectors, rows, query)
    alone = np.array([exact_products(vectors, rows[i : i + 1], query)[0] for i in range(len(rows))])
    assert (together == alone).all()


class _Index:
    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors


def test_row_products_in_place_gathered_or_whole_agree() -> None:
    vectors, query = _unit(4000), _unit(1, seed=5)[0]
    full = vectors @ query
    index = _Index(vectors)
    for rows in (
        np.arange(100, 900),  # one run, in place
        np.arange(0, 4000, 50),  # scattered: gathered
        np.arange(0, 4000, 7),  # scattered, several gather buffers
        np.arange(0, 4000, 2),  # half the catalog: one product over all of it
        np.r_[np.arange(10, 60), np.arange(2000, 2100)],  # two runs
    ):
        np.testing.assert_allclose(row_products(index, rows, query), full[rows], atol=1e-5)
