"""Ranking: semantic similarity of the query to each track document plus the structured match.

score = 1.0 x subgenre match + 0.5 x genre match + 0.6 x audio-feature match + 0.3 x era match
        + 0.35 x document similarity + 0.05 x popularity
A named subgenre therefore outranks any mood alone, the mood orders tracks inside it, and
the document similarity decides when the query names nothing the lexicon knows (an artist,
a title, a free description).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from musicspace_llm.ann import ANN_MAX_EXACT, ANN_MIN_CANDIDATES, ann_candidates, nearest
from musicspace_llm.index import TrackIndex
from musicspace_llm.projection import SHORTLIST
from musicspace_llm.understanding import QueryIntent
from musicspace_shared.features import FEATURES
from musicspace_shared.topk import kth_largest, top_rows

W_SUBGENRE = 1.0
W_GENRE = 0.5
W_FEATURES = 0.6
W_ERA = 0.3
W_DOCUMENT = 0.35
W_POPULARITY = 0.05
_FEATURE_POS = {name: i for i, name in enumerate(FEATURES)}


@dataclass
class SearchFilters:
    genres: list[str] = field(default_factory=list)
    subgenres: list[str] = field(default_factory=list)
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    years: tuple[int, int] | None = None  # album release year, inclusive


@dataclass
class Match:
    row: int
    score: float
    matched: list[str]  # what of the query this track satisfies (keys, for the reason)
    similarity: float
    closest: bool = False  # shown although it does not match (nothing, or too little, did)


def filter_mask(index: TrackIndex, filters: SearchFilters | None) -> np.ndarray:
    """Rows that pass the hard filters (a track without the feature fails a feature range)."""
    mask = np.ones(len(index), dtype=bool)
    if filters is None:
        return mask
    if filters.genres:
        mask &= _named_in(index.genre_names, filters.genres)[index.genre_codes]
    if filters.subgenres:
        mask &= _named_in(index.sub_names, filters.subgenres)[index.sub_codes]
    for name, (low, high) in filters.ranges.items():
        column = index.frame.features[:, _FEATURE_POS[name]]
        with np.errstate(invalid="ignore"):
            if low is not None:
                mask &= column >= low
            if high is not None:
                mask &= column <= high
    if filters.years is not None:
        mask &= (index.years >= filters.years[0]) & (index.years <= filters.years[1])
    return mask


def _named_in(names: list[str], wanted: list[str]) -> np.ndarray:
    """Per name code: whether the name is one of `wanted` (case aside)."""
    folded = {w.lower() for w in wanted}
    return np.array([name.lower() in folded for name in names] or [False], dtype=bool)


def _lookup(
    names: list[str], codes: np.ndarray, weights: dict[str, float], scale: float
) -> np.ndarray:
    """scale x the weight of each track's name (0 for names not in `weights`)."""
    table = scale * np.array([weights.get(name, 0.0) for name in names] or [0.0])
    return np.take(table, codes) if len(codes) else np.zeros(0)


def feature_match(index: TrackIndex, features: dict[str, float]) -> np.ndarray:
    """How well each track leans the asked ways (0..1); 0 without features.

    Half the weighted mean, half the weakest lean: "calm acoustic" wants tracks that are
    both, not very calm but electric ones. (Computed in place: each pass over the catalog
    writes no new array.)
    """
    if not features:
        return np.zeros(len(index))
    total = np.zeros(len(index))
    weakest = np.ones(len(index))
    part = np.empty(len(index))
    for key, weight in features.items():
        lean = index.leans[key]
        total += np.multiply(weight, lean, out=part)
        np.minimum(weakest, lean, out=weakest)
    total *= 0.5
    total /= sum(features.values())
    weakest *= 0.5
    total += weakest
    return total


def structured_scores(index: TrackIndex, intent: QueryIntent) -> np.ndarray:
    """Everything but the document similarity, for every track (a new array, the caller's)."""
    score = W_POPULARITY * index.popularity
    if intent.subgenres:
        score += _lookup(index.sub_names, index.sub_codes, intent.subgenres, W_SUBGENRE)
    if intent.genres:
        score += _lookup(index.genre_names, index.genre_codes, intent.genres, W_GENRE)
    if intent.features:
        matched = feature_match(index, intent.features)
        matched *= W_FEATURES
        score += matched
    if intent.eras and len(index):
        eras = W_ERA * np.array([intent.eras.get(int(d), 0.0) for d in range(0, 2101, 10)])
        score += np.take(eras, index.era_slots)
    return score


# Reading a row in place costs about a quarter of gathering it (a gather copies it first).
GATHER_COST = 4
MAX_SPANS = 64
# Bound on a float32 product's rounding for unit vectors of up to 1024 dimensions (about
# n x 2^-24), whichever order a kernel adds in.
PRODUCT_ERROR = 1e-4


def exact_products(vectors: np.ndarray, rows: np.ndarray, query: np.ndarray) -> np.ndarray:
    """vectors[rows] @ query (one query, or one per column) accumulated in float64 and rounded
    once to float32: the same value for a row wherever it sits and whatever else is multiplied
    with it."""
    return (vectors[rows].astype(np.float64) @ query.astype(np.float64)).astype(np.float32)


GATHER_ROWS = 256  # a gather buffer of 512 KB (512 dimensions) stays in cache


def _gathered_products(vectors: np.ndarray, rows: np.ndarray, query: np.ndarray) -> np.ndarray:
    """vectors[rows] @ query through a small reused buffer: a third cheaper here than one
    gather of every row, which writes a fresh array as large as the rows to memory first."""
    out = np.empty((len(rows), *query.shape[1:]), dtype=np.float32)
    buffer = np.empty((min(GATHER_ROWS, len(rows)), vectors.shape[1]), dtype=vectors.dtype)
    for start in range(0, len(rows), GATHER_ROWS):
        chunk = rows[start : start + GATHER_ROWS]
        block = buffer[: len(chunk)]
        np.take(vectors, chunk, axis=0, out=block)
        np.matmul(block, query, out=out[start : start + len(chunk)])
    return out


def row_products(index: TrackIndex, rows: np.ndarray, query: np.ndarray) -> np.ndarray:
    """vectors[rows] @ query for sorted rows, at the least memory traffic: runs of nearby rows
    (a catalog grouped by subgenre gives a few long ones) are multiplied in place, scattered
    rows gathered, and past a quarter of the catalog one product over all of it wins. Rounding
    depends on the path."""
    n = len(rows)
    vectors = index.vectors
    if not n:
        return np.zeros((0, *query.shape[1:]), dtype=np.float32)
    if n * GATHER_COST >= len(vectors):
        return (vectors @ query)[rows]
    # Split where reading the rows between two candidates costs more than gathering them would.
    breaks = np.flatnonzero(np.diff(rows) > GATHER_COST) + 1
    starts, ends = np.r_[0, breaks], np.r_[breaks, n]
    spanned = int((rows[ends - 1] - rows[starts]).sum()) + len(starts)
    if len(starts) > MAX_SPANS or spanned > GATHER_COST * n:
        return _gathered_products(vectors, rows, query)
    out = np.empty((n, *query.shape[1:]), dtype=np.float32)
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        low = int(rows[a])
        out[a:b] = (vectors[low : int(rows[b - 1]) + 1] @ query)[rows[a:b] - low]
    return out


def shortlist(
    index: TrackIndex, structured: np.ndarray, candidates: np.ndarray, terms: list[Term], k: int
) -> np.ndarray:
    """The candidates worth an exact product when nearly all are (projection.py): the best
    max(SHORTLIST, 8k) by their structured score plus the estimated similarities."""
    projection = index.projection
    depth = max(SHORTLIST, 8 * k)
    if projection is None or len(candidates) <= depth:
        return candidates
    estimate = structured[candidates]
    for term in terms:
        estimate = estimate + term.weight * projection.estimate(term.vector)[candidates]
    return np.sort(candidates[np.argpartition(-estimate, depth - 1)[:depth]])


def within_reach_of_nearest(
    index: TrackIndex,
    structured: np.ndarray,
    near: list[np.ndarray],
    queries: np.ndarray,
    weights: np.ndarray,
    k: int,
) -> np.ndarray:
    """The tracks that can reach the top k when no document is nearer a query vector than the
    nearest the ANN index found (its similarity bounds every other's, as far as the index
    found the nearest: HNSW misses it rarely): sorted rows.

    The nearest documents and the k best by structured score are scored exactly; the k-th
    best of those is a floor the top k reaches, so a track can only enter with a structured
    score above the floor less what the nearest similarities can add. Past ANN_MAX_EXACT such
    tracks (a query naming nothing selective), the nearest documents that pass the filters
    plus the best by structured score (ann.ann_candidates)."""
    nearest_rows = np.unique(np.concatenate(near))
    known = np.union1d(nearest_rows, top_rows(structured, k))
    products = exact_products(index.vectors, known, queries)
    ceiling = np.array(
        [
            products[np.searchsorted(known, rows), t].max() if len(rows) else 1.0
            for t, rows in enumerate(near)
        ]
    )
    score = structured[known] + products.astype(np.float64) @ weights
    floor = kth_largest(score, k)
    reach = float(ceiling @ weights) + 2 * float(weights.sum()) * PRODUCT_ERROR
    passing = nearest_rows[np.isfinite(structured[nearest_rows])]
    bounded = np.flatnonzero(structured >= floor - reach)
    if len(bounded) > ANN_MAX_EXACT:
        return ann_candidates(structured, passing, k)
    return np.union1d(bounded, passing)


@dataclass(frozen=True)
class Term:
    """A vector the documents are compared with, and how much the cosine weighs in the score:
    the query's own embedding (W_DOCUMENT), the centroid of an artist's documents for
    "like <artist>" (query.W_SIMILAR_TEXT)."""

    vector: np.ndarray  # (dim,) float32, unit length
    weight: float


def top_matches(
    index: TrackIndex,
    intent: QueryIntent,
    query_vector: np.ndarray | None,
    *,
    limit: int,
    filters: SearchFilters | None = None,
    exclude: set[str] | None = None,
    extra: np.ndarray | None = None,
    alike: Term | None = None,
) -> list[Match]:
    """The best `limit` tracks, best first; `extra` adds a per-track score (the user profile),
    `alike` a cosine with another vector than the query's (scored like the query's: only for
    the tracks it can lift into the top, never as a product over every track)."""
    if not len(index):
        return []
    structured = structured_scores(index, intent)
    if extra is not None:
        structured += extra
    mask = filter_mask(index, filters) if filters is not None else None
    if exclude:
        positions = [index.frame.index[t] for t in exclude if t in index.frame.index]
        mask = np.ones(len(index), dtype=bool) if mask is None else mask
        mask[np.array(positions, dtype=np.int64)] = False
    if mask is not None:
        np.copyto(structured, -np.inf, where=~mask)
    k = min(limit, len(index) if mask is None else int(mask.sum()))
    if k <= 0:
        return []
    embedded = query_vector is not None and index.dim == len(query_vector)
    terms = [Term(query_vector.astype(np.float32), W_DOCUMENT)] if embedded else []
    terms += [] if alike is None else [alike]
    # A cosine (<= 1) can lift a track by at most its weight, so only tracks within the sum of
    # the weights of the k-th best structured score can reach the top k. Scoring just those
    # keeps the matrix product small when the query names a subgenre or a mood.
    reach = sum(term.weight for term in terms)
    kth = kth_largest(structured, k)
    candidates = np.flatnonzero(structured >= kth - reach)
    if terms:
        queries = np.stack([term.vector for term in terms], axis=1)  # (dim, terms)
        weights = np.array([term.weight for term in terms])
        near = None
        if index.neighbours is not None and len(candidates) > ANN_MIN_CANDIDATES:
            near = nearest(index.neighbours, [term.vector for term in terms], k)
        if near is not None:
            candidates = within_reach_of_nearest(index, structured, near, queries, weights, k)
        elif index.neighbours is None and len(candidates) * GATHER_COST >= len(index):
            candidates = shortlist(index, structured, candidates, terms, k)
        products = row_products(index, candidates, queries)
        score = structured[candidates] + products.astype(np.float64) @ weights
        # The products above round differently by the path they took (in place, gathered or
        # whole): the contenders for the top k are scored again in one fixed way, so the
        # ranking does not depend on the path.
        contenders = np.flatnonzero(score >= kth_largest(score, k) - 2 * reach * PRODUCT_ERROR)
        candidates = candidates[contenders]
        products = exact_products(index.vectors, candidates, queries)
        score = structured[candidates] + products.astype(np.float64) @ weights
        similarity = products[:, 0] if embedded else np.zeros(len(candidates), dtype=np.float32)
    else:
        similarity = np.zeros(len(candidates), dtype=np.float32)
        score = structured[candidates]
    top = np.argpartition(-score, k - 1)[:k]
    # Ties broken by track id so results are stable run to run.
    top = sorted(top.tolist(), key=lambda i: (-score[i], index.frame.track_ids[candidates[i]]))
    return [
        Match(
            row=int(candidates[i]),
            score=float(score[i]),
            matched=satisfied(index, int(candidates[i]), intent),
            similarity=float(similarity[i]),
        )
        for i in top
    ]


def satisfied(index: TrackIndex, row: int, intent: QueryIntent) -> list[str]:
    """The concept keys of the intent this track actually has (used to ground reasons)."""
    keys = []
    if index.frame.subgenres[row] in intent.subgenres:
        keys.append(f"subgenre:{index.frame.subgenres[row]}")
    if index.frame.genres[row] in intent.genres:
        keys.append(f"genre:{index.frame.genres[row]}")
    for key in intent.features:
        name, direction = key.split(":")
        value = index.unit[row, _FEATURE_POS[name]]
        if not np.isnan(value) and (
            (direction == "high" and value >= 0.6) or (direction == "low" and value <= 0.4)
        ):
            keys.append(f"feature:{key}")
    if int(index.decades[row]) in intent.eras:
        keys.append(f"era:{int(index.decades[row])}")
    return keys
