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


def _asked_of_the_store(
    monkeypatch: pytest.MonkeyPatch, index: TrackIndex, store: VectorStore
) -> list[tuple[np.ndarray, int]]:
    """The index answers from the store's collection; returns the (query, n) it is asked."""
    asked: list[tuple[np.ndarray, int]] = []
    nearest = StoreNeighbours(store, index.frame.index)

    def counted(query: np.ndarray, n: int) -> np.ndarray:
        asked.append((query, n))
        return nearest(query, n)

    monkeypatch.setattr(index, "neighbours", counted)
    return asked


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
    asked = _asked_of_the_store(monkeypatch, index, store)
    # The depths scaled down with the catalog (3,000 tracks, not a million): the exact scoring
    # sees 40 nearest documents plus the 50 most popular tracks, 3% of the catalog.
    monkeypatch.setattr(search, "ANN_MIN_CANDIDATES", 100)
    monkeypatch.setattr(search, "ANN_MAX_EXACT", 100)
    monkeypatch.setattr(ann, "ANN_DEPTH", 40)
    monkeypatch.setattr(ann, "STRUCTURED_DEPTH", 50)
    approximate = [search.top_matches(index, intent, q, limit=K) for q in queries]
    assert len(asked) == len(queries) and {n for _, n in asked} == {40}
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
    monkeypatch.setattr(search, "ANN_MIN_CANDIDATES", 100)
    assert [m.row for m in search.top_matches(index, intent, queries[0], limit=K)] == exact


def test_a_second_vector_ranks_as_if_every_tracks_cosine_were_added(catalog, monkeypatch) -> None:  # noqa: ANN001
    """ "like <artist>": the centroid's cosine, scored only where it can reach the top, ranks
    as the cosine with every track added to the structured score would."""
    index, store, queries = catalog
    intent = QueryIntent()
    # The centroid of one topic's documents (cosine ~0.85 with them, lifting them by ~1.3):
    # tracks below the k-th best structured score by more than the query's weight reach the top.
    topic = np.argsort(-(index.vectors @ queries[-1]))[:50]
    centroid = _unit(index.vectors[topic].mean(axis=0, keepdims=True))[0]
    sound = np.random.default_rng(2).uniform(0.0, 2.0, len(index))
    every = np.arange(len(index))
    whole = sound + 1.5 * search.exact_products(index.vectors, every, centroid).astype(np.float64)
    alike = search.Term(centroid, 1.5)
    for query in queries[:10]:
        expected = search.top_matches(index, intent, query, limit=K, extra=whole)
        found = search.top_matches(index, intent, query, limit=K, extra=sound, alike=alike)
        assert [m.row for m in found] == [m.row for m in expected]
        assert [m.similarity for m in found] == [m.similarity for m in expected]
    # Through the nearest-neighbour index, the documents nearest each vector are asked for.
    asked = _asked_of_the_store(monkeypatch, index, store)
    monkeypatch.setattr(search, "ANN_MIN_CANDIDATES", 100)
    search.top_matches(index, intent, queries[0], limit=K, extra=sound, alike=alike)
    assert [q.tolist() for q, _ in asked] == [queries[0].tolist(), centroid.tolist()]


def test_the_nearest_documents_bound_the_rest_and_the_ranking_stays_exact(
    catalog,  # noqa: ANN001
    monkeypatch,  # noqa: ANN001
) -> None:
    """With the true nearest documents, scoring only the tracks within the bound they give
    ranks exactly as scoring every track; and it scores a fraction of the catalog."""
    index, _, queries = catalog
    popularity = QueryIntent()
    # What a query names spreads the structured scores (a mood, a subgenre, a profile).
    named = np.random.default_rng(5).uniform(0.0, 1.0, len(index))
    exact = [search.top_matches(index, popularity, q, limit=K, extra=named) for q in queries]
    monkeypatch.setattr(
        index, "neighbours", lambda query, n: np.argsort(-(index.vectors @ query))[:n]
    )
    monkeypatch.setattr(search, "ANN_MIN_CANDIDATES", 0)
    monkeypatch.setattr(ann, "ANN_DEPTH", 20)
    scored: list[int] = []
    bound = search.within_reach_of_nearest

    def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        rows = bound(*args, **kwargs)
        scored.append(len(rows))
        return rows

    monkeypatch.setattr(search, "within_reach_of_nearest", counted)
    bounded = [search.top_matches(index, popularity, q, limit=K, extra=named) for q in queries]
    assert [[m.row for m in a] for a in bounded] == [[m.row for m in a] for a in exact]
    assert [[m.score for m in a] for a in bounded] == [[m.score for m in a] for a in exact]
    assert len(scored) == len(queries) and max(scored) < len(index) / 3
