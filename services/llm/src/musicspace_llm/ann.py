"""Large catalogs: the document similarity through an approximate nearest-neighbour index.

Up to ANN_MIN_TRACKS tracks, search scores every candidate exactly: one product over the
catalog's vectors is a few milliseconds (the demo's 28k tracks: about 5 ms) and exact. Past it,
a query whose structured part leaves more than ANN_MAX_EXACT candidates (it names no subgenre,
genre or artist that narrows the catalog: a title, a mood, a description) would read every
vector (1M tracks of 512 dimensions: 2 GB per query). Instead it scores exactly the union of
  - the ANN_DEPTH documents nearest the query, from the vector store's HNSW index (Chroma keeps
    it beside the vectors it already stores, updated by every sync), and
  - the STRUCTURED_DEPTH best tracks by everything but the document similarity (the names the
    query typed, the artist's other tracks, the moods, popularity),
so a track reaches the top k by its document or by what the query names.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import numpy as np

from musicspace_shared.topk import top_rows

logger = logging.getLogger("musicspace.llm.ann")

ANN_MIN_TRACKS = 200_000
ANN_MAX_EXACT = 50_000
ANN_DEPTH = 400
STRUCTURED_DEPTH = 2000


class Neighbours(Protocol):
    def __call__(self, query: np.ndarray, n: int) -> np.ndarray:
        """Rows of (about) the n documents nearest the query, nearest first."""
        ...


class StoreNeighbours:
    """Nearest documents from the vector store's collection (Chroma's HNSW, cosine), as rows of
    one snapshot (tracks the snapshot lacks are skipped)."""

    def __init__(self, store: Any, rows: dict[str, int]) -> None:
        self.store = store
        self.rows = rows

    def __call__(self, query: np.ndarray, n: int) -> np.ndarray:
        found = self.store.collection.query(
            query_embeddings=[np.asarray(query, dtype=np.float32)], n_results=n, include=[]
        )
        ids = found["ids"][0] if found["ids"] else []
        return np.array([self.rows[t] for t in ids if t in self.rows], dtype=np.int64)


def ann_candidates(
    structured: np.ndarray, neighbours: Neighbours, queries: list[np.ndarray], k: int
) -> np.ndarray | None:
    """Sorted rows to score exactly: the documents nearest each query vector that pass the
    filters (finite structured score) plus the best by structured score; None when the index
    failed (the caller then scores every candidate)."""
    try:
        near = np.concatenate(
            [np.zeros(0, dtype=np.int64)] + [neighbours(q, max(ANN_DEPTH, 4 * k)) for q in queries]
        )
    except Exception:  # noqa: BLE001 - exact search still answers, only slower
        logger.warning("nearest-neighbour query failed; scoring every candidate", exc_info=True)
        return None
    near = near[np.isfinite(structured[near])] if len(near) else near
    best = top_rows(structured, max(STRUCTURED_DEPTH, 4 * k))
    return np.union1d(near, best)
