"""Large catalogs: the document similarity through an approximate nearest-neighbour index.

Up to ANN_MIN_TRACKS tracks, search scores every candidate exactly: one product over the
catalog's vectors is a few milliseconds (the demo's 28k tracks: about 5 ms) and exact. Past it,
a query leaving more than ANN_MIN_CANDIDATES candidates (tracks whose structured score is
within reach of the top: a query naming a subgenre leaves ~40k of 1M, one naming nothing
selective nearly all) asks the vector store's HNSW index (Chroma keeps it beside the vectors,
updated by every sync) for the ANN_DEPTH documents nearest each query vector, and
search.within_reach_of_nearest uses them twice:
  - their similarity bounds every other document's (as far as the index found the nearest),
    so only tracks whose structured score is within that bound of the top can enter it:
    scored exactly, with the nearest documents, when at most ANN_MAX_EXACT are;
  - past that, the exact scoring sees the union of the nearest documents and the
    STRUCTURED_DEPTH best tracks by everything but the document similarity (the names the
    query typed, the artist's other tracks, the moods, popularity), so a track reaches the
    top k by its document or by what the query names.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import numpy as np

from musicspace_shared.topk import top_rows

logger = logging.getLogger("musicspace.llm.ann")

ANN_MIN_TRACKS = 200_000
ANN_MIN_CANDIDATES = 4_000  # fewer: scored exactly at once (about 1.5 ms at 512 dimensions)
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


def nearest(neighbours: Neighbours, queries: list[np.ndarray], k: int) -> list[np.ndarray] | None:
    """For each query vector, the rows of the ANN_DEPTH (at least 4k) documents nearest it;
    None when the index failed (the caller then scores every candidate)."""
    try:
        return [neighbours(q, max(ANN_DEPTH, 4 * k)) for q in queries]
    except Exception:  # noqa: BLE001 - exact search still answers, only slower
        logger.warning("nearest-neighbour query failed; scoring every candidate", exc_info=True)
        return None


def ann_candidates(structured: np.ndarray, near: np.ndarray, k: int) -> np.ndarray:
    """Sorted rows to score exactly when too many tracks are within reach: the nearest
    documents that pass the filters (finite structured score) plus the best by structured
    score."""
    return np.union1d(near, top_rows(structured, max(STRUCTURED_DEPTH, 4 * k)))
