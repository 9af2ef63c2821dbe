"""The short list before the whole catalog's product (projection.py): the same top k as
scoring every track, from a fraction of the exact products."""

from __future__ import annotations

import numpy as np
import pytest

from musicspace_llm import projection, search
from musicspace_llm.index import TrackIndex
from musicspace_llm.projection import Projection
from musicspace_llm.understanding import QueryIntent

from .helpers import synthetic_index

TRACKS, DIM, K = 12_000, 256, 10


def _unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def catalog() -> tuple[TrackIndex, np.ndarray]:
    """Documents in 80 topics (as embeddings cluster), queries near some of them."""
    rng = np.random.default_rng(21)
    topics = rng.standard_normal((80, DIM))
    vectors = _unit(topics[rng.integers(0, 80, TRACKS)] + 0.5 * rng.standard_normal((TRACKS, DIM)))
    queries = _unit(topics[rng.integers(0, 80, 30)] + 0.7 * rng.standard_normal((30, DIM)))
    return synthetic_index(vectors, rng.uniform(0, 100, TRACKS)), queries


def _exact_top(index: TrackIndex, query: np.ndarray, k: int) -> list[str]:
    """Every track scored exactly: popularity plus the document similarity."""
    similarity = search.exact_products(index.vectors, np.arange(len(index)), query)
    score = search.W_POPULARITY * index.popularity + search.W_DOCUMENT * similarity.astype(
        np.float64
    )
    ids = index.frame.track_ids
    return sorted(range(len(index)), key=lambda i: (-score[i], ids[i]))[:k]


def test_a_description_ranks_as_when_every_track_is_scored(catalog, monkeypatch) -> None:  # noqa: ANN001
    index, queries = catalog
    scored: list[int] = []
    products = search.row_products

    def counted(index: TrackIndex, rows: np.ndarray, query: np.ndarray) -> np.ndarray:
        scored.append(len(rows))
        return products(index, rows, query)

    monkeypatch.setattr(search, "row_products", counted)
    for query in queries:
        # An intent that names nothing: every track is a candidate.
        got = search.top_matches(index, QueryIntent(), query, limit=K)
        assert [m.row for m in got] == _exact_top(index, query, K)
    assert scored and max(scored) == projection.SHORTLIST  # not the whole catalog


def test_a_deep_page_gets_a_longer_short_list(catalog, monkeypatch) -> None:  # noqa: ANN001
    index, queries = catalog
    scored: list[int] = []
    products = search.row_products
    monkeypatch.setattr(
        search, "row_products", lambda i, rows, q: scored.append(len(rows)) or products(i, rows, q)
    )
    got = search.top_matches(index, QueryIntent(), queries[0], limit=200)
    assert scored == [8 * 200]
    assert [m.row for m in got] == _exact_top(index, queries[0], 200)


def test_the_projection_estimates_the_products_and_is_the_same_when_refitted(catalog) -> None:  # noqa: ANN001
    index, queries = catalog
    fitted = index.projection
    assert fitted is not None and fitted.coords.shape == (TRACKS, projection.DIMENSIONS)
    again = Projection.fit(index.vectors)
    np.testing.assert_array_equal(again.coords, fitted.coords)
    for query in queries[:5]:
        error = np.abs(fitted.estimate(query) - index.vectors @ query)
        assert float(np.median(error)) < 0.05  # the residual directions carry little


def test_a_small_catalog_is_scored_whole() -> None:
    rng = np.random.default_rng(2)
    small = synthetic_index(
        _unit(rng.standard_normal((projection.MIN_TRACKS - 1, 32))), np.zeros(7999)
    )
    assert small.projection is None
