"""The content space: every track as text (artist, title, album, genre tags) plus audio features.

One sparse row per track, blocks L2-normalised and weighted, so a dot product is a blended
cosine similarity. `similar` ranks by that; the per-user SVMs (user_svm.py) learn a linear
function over the same rows. Tracks without measured features use m2's predictions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from musicspace_m2.candidates import CellIndex, Layout, LinearScore, best_rows
from musicspace_m2.predictor import pipe_tokens, whole_value
from musicspace_m2.text_features import TrackInputs
from musicspace_shared.catalog import label_codes
from musicspace_shared.features import FEATURES
from musicspace_shared.selection import Columns

# Block weights: artist and genre tags carry most of what makes tracks "go together" in a
# playlist; audio features separate moods within a genre.
WEIGHTS = {
    "artist": 1.0,
    "title": 0.35,
    "album": 0.35,
    "tags": 0.8,
    "audio": 0.7,
    "popularity": 0.3,
}

# The range of a dot product of two rows (and of a row with a mean of rows): every block is
# non-negative except the audio one, and each is at most its weight squared. Scores are mapped
# linearly from it onto 0..1 (order kept): 1 = same artist, title, album, tags, audio, top popularity.
SIMILARITY_RANGE = (-(WEIGHTS["audio"] ** 2), sum(w**2 for w in WEIGHTS.values()))

Impute = Callable[[TrackInputs], np.ndarray]


class DistinctTfidfVectorizer(TfidfVectorizer):
    """TfidfVectorizer that counts each distinct document once when most of them repeat: the
    same matrix, vocabulary and weights (the counting is sklearn's own, over the distinct
    documents; then each document's row is gathered). The genre tags of 1M tracks are 24
    distinct values: 1.7 s to count them all, 0.15 s this way. (Artists, titles and albums,
    374k to 735k distinct at 1M, were no faster: they are counted as they are.)"""

    def _count_vocab(self, raw_documents: Any, fixed_vocab: bool) -> tuple[Any, Any]:
        documents = list(raw_documents)
        code_of = {doc: code for code, doc in enumerate(dict.fromkeys(documents))}
        if len(code_of) * 4 > len(documents):
            return super()._count_vocab(documents, fixed_vocab)
        vocabulary, counts = super()._count_vocab(list(code_of), fixed_vocab)
        rows = np.fromiter(map(code_of.__getitem__, documents), np.int64, len(documents))
        return vocabulary, counts[rows]


def _vectorizers() -> dict[str, TfidfVectorizer]:
    text = {"ngram_range": (1, 1), "min_df": 2, "sublinear_tf": True, "dtype": np.float32}
    return {
        "artist": TfidfVectorizer(analyzer=whole_value, dtype=np.float32),
        "title": TfidfVectorizer(**text),
        "album": TfidfVectorizer(**text),
        "tags": DistinctTfidfVectorizer(analyzer=pipe_tokens, dtype=np.float32),
    }


def _columns(inputs: TrackInputs) -> dict[str, list[str]]:
    return {
        "artist": inputs.artist_keys,
        "title": inputs.norm_titles,
        "album": inputs.norm_albums,
        "tags": [f"g={g}|s={s}" for g, s in zip(inputs.genres, inputs.subgenres, strict=True)],
    }


def impute_by_group(inputs: TrackInputs, features: np.ndarray) -> np.ndarray:
    """Fill missing features with the subgenre (else global) mean: the cheap stand-in for m2."""
    out = features.copy()
    known = ~np.isnan(features).any(axis=1)
    global_mean = features[known].mean(axis=0) if known.any() else np.zeros(features.shape[1])
    sums: dict[str, list[np.ndarray]] = {}
    for i in np.where(known)[0]:
        sums.setdefault(inputs.subgenres[i], []).append(features[i])
    means = {k: np.mean(v, axis=0) for k, v in sums.items()}
    for i in np.where(~known)[0]:
        out[i] = means.get(inputs.subgenres[i], global_mean)
    return out


@dataclass
class ContentSpace:
    track_ids: list[str]
    inputs: TrackInputs
    matrix: sp.csr_matrix  # (n, d), rows comparable by dot product
    popularity: np.ndarray  # 0..1
    version: str
    features: np.ndarray | None = None  # (n, 9) as the catalog has them (NaN: none), for filters
    # The full fit whose columns (vocabularies, audio scale) the rows use: the version of that
    # build. Rows placed later (space_updates) keep it, so a per-user SVM trained on an older
    # space of the same basis still scores this one (its coefficients mean the same columns).
    basis: str = ""
    # Its blocks' columns (SpaceFit.layout): what the candidate index bounds; None: none.
    layout: Layout | None = None
    index: dict[str, int] = field(init=False, repr=False)
    duplicates: dict[int, list[int]] = field(init=False, repr=False)  # recording -> rows
    recording: np.ndarray = field(init=False, repr=False)  # per row: its recording's code

    def __post_init__(self) -> None:
        self.basis = self.basis or self.version
        self.index = {t: i for i, t in enumerate(self.track_ids)}
        self.recording = label_codes(self.inputs.duplicate_keys, fold=False)[0]
        self.duplicates = _groups_of_more_than_one(self.recording)
        self.inputs.forget_normalised_text()  # the rows are built: ~15% of the space's memory

    def __len__(self) -> int:
        return len(self.track_ids)

    @cached_property
    def columns(self) -> Columns:
        """What the shared post-ranking steps read (musicspace_shared.selection)."""
        features = self.features
        if features is None:
            features = np.full((len(self), len(FEATURES)), np.nan)
        return Columns(
            track_index=self.index,
            artists=label_codes(self.inputs.artist_keys)[0],
            genres=self.inputs.genres,
            subgenres=self.inputs.subgenres,
            features=features,
            release_years=self.inputs.years,
        )

    def same_recording(self, row: int) -> list[int]:
        """The row and its duplicates (same title and artist under other ids)."""
        return self.duplicates.get(int(self.recording[row]), [row])

    def centroid(self, rows: np.ndarray) -> np.ndarray:
        """The mean of the given rows: a row's dot product with it is its similarity to them."""
        return np.asarray(self.matrix[rows].mean(axis=0)).ravel()

    @cached_property
    def cells(self) -> CellIndex:
        """The candidate index (musicspace_m2.candidates), built on first use."""
        assert self.layout is not None
        groups = [
            f"{g}\x1f{s}" for g, s in zip(self.inputs.genres, self.inputs.subgenres, strict=True)
        ]
        return CellIndex(self.matrix, self.popularity, groups, self.layout)

    def similar(self, *, row: int, limit: int, index_min: int = 0) -> list[tuple[int, float]]:
        """Nearest tracks to one track, without it and its duplicates (nor their duplicates)."""
        score = LinearScore(self.matrix[row].toarray().ravel())
        return best_distinct(
            self, score, exclude_rows=np.array([row]), limit=limit, index_min=index_min
        )


def _groups_of_more_than_one(codes: np.ndarray) -> dict[int, list[int]]:
    """code -> its rows, in row order, for the codes that more than one row has (by sorting:
    a dict of a list per row took 6 s of m2's first start at 1M tracks)."""
    shared = np.flatnonzero(np.bincount(codes)[codes] > 1) if len(codes) else codes
    rows = shared[np.argsort(codes[shared], kind="stable")]
    starts = np.flatnonzero(np.r_[True, codes[rows][1:] != codes[rows][:-1]]) if len(rows) else []
    return {
        int(codes[group[0]]): group.tolist() for group in np.split(rows, starts[1:]) if len(group)
    }


def with_candidate_index(space: ContentSpace, index_min: int) -> ContentSpace:
    """The space with its candidate index built when best_distinct will use it (where the
    space is built, so that no request pays for it)."""
    if space.layout is not None and len(space) >= index_min:
        space.cells  # noqa: B018 (a cached property)
    return space


def best_distinct(
    space: ContentSpace,
    score: LinearScore,
    *,
    exclude_rows: np.ndarray,
    limit: int,
    mask: np.ndarray | None = None,
    index_min: int,
) -> list[tuple[int, float]]:
    """The best `limit` rows by `score`, one per recording, without the excluded rows and their
    duplicates and (with `mask`) only allowed rows. From `index_min` tracks up (and a space
    with a layout), through the candidate index: the same rows, without scoring them all."""
    n = len(space)
    if space.layout is None or n < index_min:
        scores = score.of(space.matrix, space.popularity, np.arange(n))
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        for row in exclude_rows:
            scores[space.same_recording(int(row))] = -np.inf
        return top_k(scores, limit, distinct=space)
    skip = np.zeros(n, dtype=bool) if mask is None else ~mask
    for row in exclude_rows:
        skip[space.same_recording(int(row))] = True
    want = min(n, limit * 3 + 10)  # as top_k: duplicates among them are dropped
    rows, scores = best_rows(space.cells, space.matrix, space.popularity, score, n=want, skip=skip)
    out = _take(rows, scores, limit, space)
    if len(out) < limit and len(rows) == want:
        # Rare: many duplicates among the first candidates; rank everything.
        return best_distinct(
            space, score, exclude_rows=exclude_rows, limit=limit, mask=mask, index_min=n + 1
        )
    return out


def top_k(
    scores: np.ndarray, limit: int, *, distinct: ContentSpace | None = None
) -> list[tuple[int, float]]:
    """Best rows by score (finite only); with `distinct`, one row per recording."""
    want = min(len(scores), limit * 3 + 10)
    candidates = (
        np.argpartition(-scores, want - 1)[:want] if want < len(scores) else np.arange(len(scores))
    )
    ordered = candidates[np.lexsort((candidates, -scores[candidates]))]
    out = _take(ordered, scores[ordered], limit, distinct)
    if len(out) < limit and want < len(scores):
        # Rare: many duplicates or exclusions among the first candidates; rank everything.
        everything = np.lexsort((np.arange(len(scores)), -scores))
        return _take(everything, scores[everything], limit, distinct)
    return out


def _take(
    order: np.ndarray, scores: np.ndarray, limit: int, distinct: ContentSpace | None
) -> list[tuple[int, float]]:
    """The first `limit` finite rows of `order` (`scores`: theirs, in that order); with
    `distinct`, one row per recording (the first in `order`). Vectorised: a loop over the
    ~3,000 candidates of a deep page cost ~3 ms."""
    finite = np.isfinite(scores)
    if not finite.all():
        cut = int(np.argmin(finite))  # up to the first score that is not finite
        order, scores = order[:cut], scores[:cut]
    if distinct is not None:
        _, first = np.unique(distinct.recording[order], return_index=True)
        keep = np.sort(first)
        order, scores = order[keep], scores[keep]
    return list(zip(order[:limit].tolist(), scores[:limit].tolist(), strict=True))


@dataclass
class SpaceFit:
    """What a full build learns from the whole catalog (vocabularies, IDF, the audio scale), so
    rows of new or changed tracks can be placed in the same space without refitting it."""

    vectorizers: dict[str, TfidfVectorizer]
    mean: np.ndarray
    std: np.ndarray

    def layout(self) -> Layout:
        """Where each block's columns sit in the rows `rows` builds (_with_audio's order)."""
        starts, at = {}, 0
        for name, vec in self.vectorizers.items():
            starts[name] = (at, at + len(vec.vocabulary_))
            at += len(vec.vocabulary_)
        text = tuple((*starts[n], WEIGHTS[n]) for n in ("title", "album") if n in starts)
        boxed_from = starts["tags"][0] if "tags" in starts else at
        audio = (at, at + len(FEATURES), WEIGHTS["audio"])
        return Layout(
            artist=starts.get("artist"),
            text=text,
            boxed_from=boxed_from,
            dense_from=at,
            audio=audio,
        )

    def rows(self, inputs: TrackInputs, full: np.ndarray) -> sp.csr_matrix:
        """The space's rows for these tracks (features complete: imputed where missing)."""
        columns = _columns(inputs)
        blocks = [
            normalize(vec.transform(columns[name])) * WEIGHTS[name]
            for name, vec in self.vectorizers.items()
        ]
        return _with_audio(blocks, inputs, full, self.mean, self.std)


def _with_audio(
    blocks: list[sp.csr_matrix],
    inputs: TrackInputs,
    full: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
) -> sp.csr_matrix:
    audio = normalize((full - mean) / std) * WEIGHTS["audio"]
    pop = np.nan_to_num(inputs.popularity, nan=0.0) / 100.0
    blocks = [
        *blocks,
        sp.csr_matrix(audio.astype(np.float32)),
        sp.csr_matrix((pop * WEIGHTS["popularity"]).astype(np.float32)[:, None]),
    ]
    return sp.hstack(blocks, format="csr")


def complete_features(
    inputs: TrackInputs, features: np.ndarray, impute: Impute | None
) -> np.ndarray:
    """Features with the missing rows filled: by `impute` (m2's model) or group means."""
    missing = np.isnan(features).any(axis=1)
    if not missing.any():
        return features.copy()
    if impute is None:
        return impute_by_group(inputs, features)
    full = features.copy()
    full[missing] = impute(inputs.take(np.where(missing)[0]))
    return full


def space_digest(track_ids: list[str], tag: str) -> str:
    return hashlib.sha256("\n".join(track_ids).encode() + tag.encode()).hexdigest()[:16]


def fit_space(
    *,
    track_ids: list[str],
    inputs: TrackInputs,
    features: np.ndarray,
    impute: Impute | None = None,
    tag: str = "",
) -> tuple[ContentSpace, SpaceFit]:
    """Fit the content space over a catalog, and what was fitted (to place later rows)."""
    full = complete_features(inputs, features, impute)
    columns = _columns(inputs)
    blocks, fitted = [], {}
    for name, vec in _vectorizers().items():
        try:
            block = vec.fit_transform(columns[name])
        except ValueError:  # empty vocabulary (tiny catalogs): the block is just absent
            continue
        fitted[name] = vec
        blocks.append(normalize(block) * WEIGHTS[name])
    mean = full.mean(axis=0) if len(full) else np.zeros(full.shape[1])
    std = full.std(axis=0) if len(full) else np.ones(full.shape[1])
    std[std == 0] = 1.0
    matrix = _with_audio(blocks, inputs, full, mean, std)
    pop = np.nan_to_num(inputs.popularity, nan=0.0) / 100.0
    fit = SpaceFit(fitted, mean, std)
    space = ContentSpace(
        track_ids, inputs, matrix, pop, space_digest(track_ids, tag), features, layout=fit.layout()
    )
    return space, fit


def build_space(
    *,
    track_ids: list[str],
    inputs: TrackInputs,
    features: np.ndarray,
    impute: Impute | None = None,
    tag: str = "",
) -> ContentSpace:
    """Fit the content space over a catalog; missing features come from `impute` (m2) or group means."""
    return fit_space(track_ids=track_ids, inputs=inputs, features=features, impute=impute, tag=tag)[
        0
    ]
