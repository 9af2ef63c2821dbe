"""The best rows of a linear score over the content space without scoring every row.

Every m2 ranking is linear in a row of the space: the SVM's decision function (coef . x +
intercept), the fallback's similarity to the user's centroid (centroid . x + 0.05 popularity)
and `similar` (the track's row . x). `CellIndex` cuts the catalog into cells (each a (genre,
subgenre) group cut further by the audio and popularity columns, at most `LEAF` rows) and
bounds from above what any row of a cell can score for a given weight vector:

- artist: a row has one artist column (weight 1). The rows of every artist with a positive
  weight are scored first (`first`); for the rest the artist adds at most 0.
- tags, audio and popularity columns: per cell, the highest and lowest value of each column
  (a box), so a weight adds at most max(high x w, low x w). The audio block (9 columns, L2
  norm 0.7 in every row) also within a ball (the cell's mean and farthest row: at most
  mean . w + radius x |w|) and by its norm (0.7 x |w|): the least of the three.
- title and album: a row's block is non-negative with L2 norm <= its block weight and has at
  most k non-zeros (k: the cell's longest), so it adds at most weight x sqrt(sum of the k
  largest squared positive weights).

`musicspace_shared.catalog.top_rows_by_group` then scores the cells in order of their bound
until the n-th best row beats the next bound: the same rows as scoring the whole catalog (an
upper bound never prunes a row that could make the list), computed on a fraction of it. Used
above `M2_CANDIDATE_INDEX_MIN_TRACKS` tracks (below, scoring everything costs less).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from musicspace_shared.catalog import label_codes, top_rows_by_group

LEAF = 1024  # rows per cell at most
BATCH_ROWS = 8192  # cells scored together (fewer, larger sparse reads)
# Added to every bound: scores are float32 dot products, bounds float64 sums of other terms.
SLACK = 1e-4


@dataclass(frozen=True)
class Layout:
    """Where the space's blocks sit among its columns (similar.SpaceFit.layout)."""

    artist: tuple[int, int] | None  # one column per artist, value 1 (weight 1.0)
    text: tuple[tuple[int, int, float], ...]  # title, album: (start, stop, block weight)
    boxed_from: int  # tags, audio and popularity: the columns from here to the last
    dense_from: int  # audio and popularity (the cells are cut on these)
    audio: tuple[int, int, float]  # the audio block: (start, stop, its rows' L2 norm)


@dataclass(frozen=True)
class LinearScore:
    """weights . row + popularity_weight x popularity + constant, for some rows."""

    weights: np.ndarray  # (d,) dense
    constant: float = 0.0
    popularity_weight: float = 0.0  # >= 0

    def of(self, matrix: sp.csr_matrix, popularity: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Exactly what scoring the whole matrix gives these rows (float64)."""
        part = matrix if len(rows) == matrix.shape[0] else matrix[rows]
        values = np.asarray(part @ self.weights).ravel() + self.constant
        if self.popularity_weight:
            values = values + self.popularity_weight * popularity[rows]
        return values.astype(np.float64, copy=False)


class CellIndex:
    """The cells of one content space and what bounds their rows (see the module doc)."""

    def __init__(
        self, matrix: sp.csr_matrix, popularity: np.ndarray, groups: list[str], layout: Layout
    ) -> None:
        self.layout = layout
        group_codes, _ = label_codes(groups)
        points = matrix[:, layout.boxed_from :]
        # Cut on the dense columns (audio, popularity) only: tags are constant in a group.
        dense_from = layout.dense_from - layout.boxed_from
        cells: list[np.ndarray] = []
        for group_rows in _rows_by_code(group_codes):
            coords = points[group_rows][:, dense_from:].toarray()
            cells.extend(_split(group_rows, coords, LEAF))  # LEAF read here: tests patch it
        sizes = np.array([len(c) for c in cells], dtype=np.int64)
        self.order = np.concatenate(cells) if cells else np.zeros(0, dtype=np.int64)
        self.starts = np.concatenate(([0], np.cumsum(sizes)))
        box = points[self.order].toarray() if len(self.order) else np.zeros((0, 0))
        heads = self.starts[:-1]
        self.high = np.maximum.reduceat(box, heads, axis=0) if len(heads) else box
        self.low = np.minimum.reduceat(box, heads, axis=0) if len(heads) else box
        start, stop, _ = layout.audio
        audio = box[:, start - layout.boxed_from : stop - layout.boxed_from]
        sizes_ = np.maximum(sizes, 1)[:, None]
        self.audio_mean = np.add.reduceat(audio, heads, axis=0) / sizes_ if len(heads) else audio
        away = np.linalg.norm(audio - np.repeat(self.audio_mean, sizes, axis=0), axis=1)
        self.audio_radius = np.maximum.reduceat(away, heads) if len(heads) else away
        del box, audio, away
        self.popularity_high = (
            np.maximum.reduceat(popularity[self.order], heads) if len(heads) else np.zeros(0)
        )
        self.text_width = (
            np.stack(
                [
                    _longest(matrix, self.order, heads, start, stop)
                    for start, stop, _ in layout.text
                ],
                axis=1,
            )
            if layout.text
            else np.zeros((len(heads), 0), dtype=np.int64)
        )
        if layout.artist is not None:
            by_artist = matrix[:, layout.artist[0] : layout.artist[1]].tocsc()
            self.artist_rows = (by_artist.indptr, by_artist.indices)

    def __len__(self) -> int:
        return len(self.starts) - 1

    def rows_of_group(self, cell: int) -> np.ndarray:
        return self.order[self.starts[cell] : self.starts[cell + 1]]

    def bounds(self, score: LinearScore) -> np.ndarray:
        """Per cell: the most any of its rows outside `first_rows` can score."""
        w = score.weights[self.layout.boxed_from :].astype(np.float64)
        per_column = self.high * np.maximum(w, 0.0) + self.low * np.minimum(w, 0.0)
        start, stop, norm = self.layout.audio
        inside = slice(start - self.layout.boxed_from, stop - self.layout.boxed_from)
        audio_w = w[inside]
        reach = np.linalg.norm(audio_w)
        audio = np.minimum.reduce(
            [
                per_column[:, inside].sum(axis=1),
                self.audio_mean @ audio_w + self.audio_radius * reach,
                np.full(len(self), norm * reach),
            ]
        )
        others = np.ones(per_column.shape[1], dtype=bool)
        others[inside] = False
        out = per_column[:, others].sum(axis=1) + audio
        for b, (start, stop, weight) in enumerate(self.layout.text):
            positive = np.asarray(score.weights[start:stop], dtype=np.float64)
            squares = np.sort(positive[positive > 0] ** 2)[::-1]
            largest = np.concatenate(([0.0], np.cumsum(squares)))  # sums of the k largest
            out += weight * np.sqrt(largest[np.minimum(self.text_width[:, b], len(squares))])
        out += score.popularity_weight * self.popularity_high + score.constant
        return out + SLACK * (1.0 + np.abs(out))

    def first_rows(self, score: LinearScore) -> np.ndarray:
        """The rows of the artists with a positive weight (their artist term is not bounded)."""
        if self.layout.artist is None:
            return np.zeros(0, dtype=np.int64)
        start, stop = self.layout.artist
        artists = np.flatnonzero(score.weights[start:stop] > 0)
        indptr, indices = self.artist_rows
        parts = [indices[indptr[a] : indptr[a + 1]] for a in artists.tolist()]
        return np.unique(np.concatenate(parts)).astype(np.int64) if parts else np.zeros(0, np.int64)


def best_rows(
    index: CellIndex,
    matrix: sp.csr_matrix,
    popularity: np.ndarray,
    score: LinearScore,
    *,
    n: int,
    skip: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The n best rows not in `skip` (a bool per row, modified) by `score` and their scores,
    best first (equal scores: the lower row first): those of scoring every row."""
    scorer: Callable[[np.ndarray], np.ndarray] = lambda rows: score.of(  # noqa: E731
        matrix, popularity, np.sort(rows)
    )
    return top_rows_by_group(
        index,
        n=n,
        skip=skip,
        first=index.first_rows(score),
        bound=index.bounds(score),
        score=lambda rows: _in_order(rows, scorer),
        batch_rows=BATCH_ROWS,  # read per call: tests patch it
    )


def _in_order(rows: np.ndarray, scorer: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Scores of `rows` in their order, computed on the rows sorted (sparse row reads in order)."""
    order = np.argsort(rows, kind="stable")
    out = np.empty(len(rows), dtype=np.float64)
    out[order] = scorer(rows[order])
    return out


def _rows_by_code(codes: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(codes, kind="stable")
    cuts = np.flatnonzero(np.diff(codes[order])) + 1
    return [part for part in np.split(order, cuts) if len(part)]


def _split(rows: np.ndarray, coords: np.ndarray, leaf: int) -> list[np.ndarray]:
    """Halve along the widest column until at most `leaf` rows (a k-d tree's leaves)."""
    if len(rows) <= leaf:
        return [np.sort(rows)]
    spread = coords.max(axis=0) - coords.min(axis=0)
    column = int(np.argmax(spread))
    half = len(rows) // 2
    part = np.argpartition(coords[:, column], half)
    low, high = part[:half], part[half:]
    return _split(rows[low], coords[low], leaf) + _split(rows[high], coords[high], leaf)


def _longest(
    matrix: sp.csr_matrix, order: np.ndarray, heads: np.ndarray, start: int, stop: int
) -> np.ndarray:
    """Per cell: the most non-zeros a row has among columns start..stop."""
    inside = (matrix.indices >= start) & (matrix.indices < stop)
    counts = np.concatenate(([0], np.cumsum(inside)))
    per_row = counts[matrix.indptr[1:]] - counts[matrix.indptr[:-1]]
    return np.maximum.reduceat(per_row[order], heads) if len(heads) else np.zeros(0, np.int64)
