"""Large catalogs: nearest documents through Chroma's HNSW index, against exact search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from musicspace_llm import ann, search
from musicspace_llm.ann import StoreNeighbours
from musicspace_llm.index import TrackIndex
from musicspace_llm.settings import Settings
from musicspace_llm.store import SEARCH_EF, VectorStore, make_client
from musicspace_llm.understanding import QueryIntent

from .helpers import synthetic_index

TRACKS, DIM, K = 3000, 64, 10


def _unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrackIndex, VectorStore, np.ndarray]:
    """3,000 documents in 60 topics (as embeddings cluster), stored in a Chroma collection."""
    rng = np.random.default_rng(18)
    topics = rng.standard_normal((60, DIM))
    vectors = _unit(topics[rng.integers(0, 60, TRACKS)] + 0.6 * rng.standard_normal((TRACKS, DIM)))
    queries = _unit(topics[rng.integers(0, 60, 40)] + 0.8 * rng.standard_normal((40, DIM)))
    index = synthetic_index(vectors, rng.uniform(0, 100, TRACKS))
    ids = index.frame.track_ids
    root = Path(tmp_path_factory.mktemp("ann"))
    store = VectorStore(make_client(Settings(model_root=root)), "tracks-ann-test")
    store.upsert(
        ids=ids, vectors=vectors, documents=["" for _ in ids], metadatas=[{"row": ""} for _ in ids]
    )
    return index, store, queries


def test_the_stores_nearest_documents_recall_exact_search(catalog) -> None:  # noqa: ANN001
    index, store, queries = catalog
    reopened = store.client.get_collection(store.name)
    assert reopened.configuration["hnsw"]["ef_search"] == SEARCH_EF
    nearest = StoreNeighbours(store, index.frame.index)
    recall = []
    for query in queries:
        exact = set(np.argsort(-(index.vectors @ query))[:K].tolist())
        recall.append(len(exact & set(nearest(query, K).tolist())) / K)
    assert np.mean(recall) >= 0.9


def test_search_through_the_index_ranks_like_exact_search(catalog, monkeypatch) -> None:  # noqa: ANN001
    index, store, queries = catalog
    intent = QueryIntent()  # names nothing: every track is a candidate, as for a description
    exact = [search.top_matches(index, intent, q, limit=K) for q in queries]
    asked: list[int] = []
    nearest = StoreNeighbours(store, index.frame.index)

    def counted(query: np.ndarray, n: int) -> np.ndarray:
        asked.append(n)
        return nearest(query, n)

    monkeypatch.setattr(index, "neighbours", counted)
    # The depths scaled down with the catalog (3,000 tracks, not a million): the exact scoring
    # sees 40 nearest documents plus the 50 most popular tracks, 3% of the catalog.
    monkeypatch.setattr(search, "ANN_MAX_EXACT", 100)
    monkeypatch.setattr(ann, "ANN_DEPTH", 40)
    monkeypatch.setattr(ann, "STRUCTURED_DEPTH", 50)
    approximate = [search.top_matches(index, intent, q, limit=K) for q in queries]
    assert len(asked) == len(queries)
    overlap = [
        len({m.row for m in a} & {m.row for m in b}) / K
        for a, b in zip(exact, approximate, strict=True)
    ]
    assert np.mean(overlap) >= 0.95
    # What both return is scored alike: the same exact similarity, whichever path found it.
    a, b = exact[0][0], approximate[0][0]
    assert a.row != b.row or a.similarity == b.similarity


def test_a_failing_index_falls_back_to_exact_search(catalog, monkeypatch) -> None:  # noqa: ANN001
    index, _, queries = catalog
    intent = QueryIntent()
    exact = [m.row for m in search.top_matches(index, intent, queries[0], limit=K)]

    def broken(query: np.ndarray, n: int) -> np.ndarray:
        raise ConnectionError("vector store unreachable")

    monkeypatch.setattr(index, "neighbours", broken)
    monkeypatch.setattr(search, "ANN_MAX_EXACT", 100)
    assert [m.row for m in search.top_matches(index, intent, queries[0], limit=K)] == exact
