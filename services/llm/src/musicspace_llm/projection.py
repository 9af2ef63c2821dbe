"""A short list before the whole catalog's product: the document similarity in 128 dimensions.

A query that names nothing selective (a title, an artist with a few tracks, a description the
lexicon does not know) needs its similarity to every track, and one product over all the
vectors reads them all from memory: 58 MB for the demo catalog, about 5 ms, most of such a
search's CPU. The vectors' first principal components hold most of what orders them, so the
product in those (a quarter of the memory) estimates every track's similarity; search.py
scores exactly only the SHORTLIST tracks best by the estimate (structured score included).

The estimate is a heuristic, not a bound (a bound from the residual's norm prunes nothing on
these vectors): on 600 bench queries the exact top 10 by document similarity was inside the
1,000 best by the estimate 99.9% of the time (services/llm/README.md). Catalogs under
MIN_TRACKS keep the exact product, already cheap there; past ann.ANN_MIN_TRACKS the vector
store's nearest-neighbour index takes over.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DIMENSIONS = 128
SHORTLIST = 1000
MIN_TRACKS = 8 * SHORTLIST
FIT_ROWS = 20_000  # rows the components are fitted on (evenly spread over the catalog)
_CHUNK = 8192  # rows projected at a time (bounds the float64 temporary)


@dataclass(frozen=True)
class Projection:
    """vectors ~ mean + coords @ basis.T, in the DIMENSIONS directions the vectors vary most."""

    mean: np.ndarray  # (dim,) float32
    basis: np.ndarray  # (dim, DIMENSIONS) float32, orthonormal columns
    coords: np.ndarray  # (n, DIMENSIONS) float32

    @classmethod
    def fit(cls, vectors: np.ndarray, dimensions: int = DIMENSIONS) -> Projection:
        """Principal components of `vectors` (deterministic: a fixed spread of rows)."""
        sample = vectors[:: max(1, len(vectors) // FIT_ROWS)].astype(np.float64)
        mean = sample.mean(axis=0)
        centred = sample - mean
        values, vecs = np.linalg.eigh(centred.T @ centred)
        basis = vecs[:, np.argsort(values)[::-1][:dimensions]]
        # A component's sign is arbitrary: fix it so that refits of the same vectors agree.
        basis *= np.where(basis[np.abs(basis).argmax(axis=0), range(basis.shape[1])] < 0, -1, 1)
        coords = np.empty((len(vectors), basis.shape[1]), dtype=np.float32)
        for start in range(0, len(vectors), _CHUNK):
            block = vectors[start : start + _CHUNK].astype(np.float64) - mean
            coords[start : start + _CHUNK] = block @ basis
        return cls(mean.astype(np.float32), basis.astype(np.float32), coords)

    def estimate(self, query: np.ndarray) -> np.ndarray:
        """About vectors @ query, for every row (float32)."""
        query = np.asarray(query, dtype=np.float32)
        return self.coords @ (query @ self.basis) + np.float32(self.mean @ query)
