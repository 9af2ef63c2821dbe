"""The hybrid scorer: the one scoring path the service and the evaluation share.

Two stages, both vectorised over the catalog:
1. candidates: a cheap affinity score over every track (the user's share of the track's
   artist, album, subgenre and genre, closeness to the audio profile, popularity) keeps the
   best `n_candidates` tracks the user does not hold;
2. the global model (a gradient-boosted classifier, see training.py) ranks them from hybrid
   features: metadata affinity, similarity to the audio profile (mean/spread and nearest held
   track), the personal model's log-odds, and popularity. Missing values (a track without
   features, a user without a personal model) are NaN, which the classifier handles natively,
   so tracks without features are scored on what they have.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from musicspace_m1.catalog_index import CatalogIndex
from musicspace_m1.personal import PersonalModel
from musicspace_m1.profile import AudioProfile, Profile
from musicspace_shared.catalog import top_rows_by_group
from musicspace_shared.rowwise import row_dot

FEATURE_NAMES = (
    "artist_share",
    "artist_count",
    "artist_coverage",
    "album_share",
    "song_owned",
    "subgenre_share",
    "genre_share",
    "popularity",
    "popularity_gap",
    "audio_distance",
    "audio_nearest",
    "personal",
    "profile_tracks",
    "audio_fallback",
)
# What a caller sees per item: the inputs that carry the score, in readable form.
DRIVERS = (
    "artist_share",
    "album_share",
    "subgenre_share",
    "genre_share",
    "audio_similarity",
    "personal",
    "popularity",
)
N_CANDIDATES = 400


@dataclass
class GlobalModel:
    """What M1/audio_predictor.pkl holds: the ranker and the global average audio profile."""

    classifier: Any  # fitted sklearn classifier with predict_proba over FEATURE_NAMES
    global_audio: AudioProfile
    feature_names: tuple[str, ...] = FEATURE_NAMES
    n_candidates: int = N_CANDIDATES
    min_tracks: int = 10
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Ranked:
    rows: np.ndarray
    scores: np.ndarray
    features: np.ndarray  # (len(rows), len(FEATURE_NAMES))


def audio_distance(audio: np.ndarray, audio_sq: np.ndarray, profile: AudioProfile) -> np.ndarray:
    """RMS distance to the profile mean in units of the profile's spread (NaN without features).

    sum_j w_j (a_j - m_j)^2 expanded into two row-wise products over the rows given (row_dot,
    not BLAS: a row's distance is the same whichever rows are scored with it).
    """
    w = 1.0 / profile.spread**2
    sq = (
        row_dot(audio_sq, w)
        - 2.0 * row_dot(audio, w * profile.mean)
        + float(np.sum(w * profile.mean**2))
    )
    return np.sqrt(np.maximum(sq, 0.0) / len(w))


# The candidate stage's weights (recall, not order): artists first, then albums, subgenres,
# genres; audio closeness (0..1) and popularity (0..1) break ties among the rest.
W_ARTIST, W_ALBUM, W_SUBGENRE, W_GENRE, W_CLOSENESS, W_POPULARITY = 4.0, 2.0, 1.0, 0.3, 0.2, 0.05


@dataclass
class _Affinity:
    """The user's counts per artist, album, subgenre and genre (entity-sized arrays), and the
    songs they hold: gathered for the rows a stage asks about, never over the whole catalog."""

    index: CatalogIndex
    profile: Profile
    n: int  # the profile's tracks (at least 1)
    artist_counts: np.ndarray
    album_counts: np.ndarray
    subgenre_counts: np.ndarray
    genre_counts: np.ndarray
    songs: np.ndarray  # song codes held, sorted

    def artist(self, rows: np.ndarray) -> np.ndarray:
        return self.artist_counts[self.index.artist[rows]]

    def album(self, rows: np.ndarray) -> np.ndarray:
        return self.album_counts[self.index.album[rows]] / self.n

    def subgenre(self, rows: np.ndarray) -> np.ndarray:
        return self.subgenre_counts[self.index.subgenre[rows]] / self.n

    def genre(self, rows: np.ndarray) -> np.ndarray:
        return self.genre_counts[self.index.genre[rows]] / self.n

    def song_owned(self, rows: np.ndarray) -> np.ndarray:
        return np.isin(self.index.song[rows], self.songs)

    def closeness(self, audio: np.ndarray, audio_sq: np.ndarray) -> np.ndarray:
        """0..1 closeness of these rows' audio to the profile (0 without features)."""
        distance = audio_distance(audio, audio_sq, self.profile.audio)
        return np.nan_to_num(np.exp(-0.5 * distance**2), nan=0.0)

    def prescore(self, rows: np.ndarray) -> np.ndarray:
        """The candidate stage's cheap affinity score of these rows."""
        index = self.index
        closeness = self.closeness(
            np.take(index.audio, rows, axis=0), np.take(index.audio_sq, rows, axis=0)
        )
        return (
            W_ARTIST * self.artist(rows) / self.n
            + W_ALBUM * self.album(rows)
            + W_SUBGENRE * self.subgenre(rows)
            + W_GENRE * self.genre(rows)
            + W_CLOSENESS * closeness
            + W_POPULARITY * index.popularity_or_zero[rows]
        )

    def group_prescore(self, group: int) -> tuple[np.ndarray, np.ndarray]:
        """Every row of `group` and its prescore, for the rows of none of the user's artists
        (scored first): their artist and album terms are 0 and the shares the group's, so
        this is prescore's sum with its first two terms 0, read from the group's slices."""
        index = self.index
        at = index.group_slice(group)
        grouped = index.grouped
        closeness = self.closeness(grouped.audio[at], grouped.audio_sq[at])
        shares = W_SUBGENRE * (
            self.subgenre_counts[index.group_subgenre[group]] / self.n
        ) + W_GENRE * (self.genre_counts[index.group_genre[group]] / self.n)
        return index.rows_of_group(group), (
            shares + W_CLOSENESS * closeness + W_POPULARITY * grouped.popularity[at]
        )


def _affinity(index: CatalogIndex, profile: Profile) -> _Affinity:
    held = profile.rows
    return _Affinity(
        index=index,
        profile=profile,
        n=max(profile.tracks, 1),
        artist_counts=np.bincount(index.artist[held], minlength=index.n_artists),
        album_counts=np.bincount(index.album[held], minlength=index.n_albums),
        subgenre_counts=np.bincount(index.subgenre[held], minlength=index.n_subgenres),
        genre_counts=np.bincount(index.genre[held], minlength=index.n_genres),
        songs=np.unique(index.song[held]),
    )


def candidates(
    index: CatalogIndex, profile: Profile, *, exclude: np.ndarray, n: int
) -> tuple[np.ndarray, _Affinity]:
    """The n best tracks by the cheap affinity score, without the excluded rows; best first,
    equal scores by catalog row.

    Exact, without scoring the whole catalog (musicspace_shared.catalog.top_rows_by_group): a
    track outside the user's artists scores its (subgenre, genre) group's share term plus at
    most W_CLOSENESS + W_POPULARITY x the top popularity, so the user's artists' tracks are
    scored first, then their best groups (one group at 1M tracks is ~40k rows, not 1M).
    """
    aff = _affinity(index, profile)
    skip = np.zeros(len(index), dtype=bool)
    skip[exclude] = True
    share = W_SUBGENRE * (aff.subgenre_counts[index.group_subgenre] / aff.n) + W_GENRE * (
        aff.genre_counts[index.group_genre] / aff.n
    )
    # Above any float rounding of the sum, below any real gap between scores.
    rest = W_CLOSENESS + W_POPULARITY * index.popularity_max + 1e-9
    rows, _ = top_rows_by_group(
        index,
        n=n,
        skip=skip,
        first=index.rows_of_artists(np.flatnonzero(aff.artist_counts)),
        bound=share + rest,
        score=aff.prescore,
        score_group=aff.group_prescore,
    )
    return rows, aff


def feature_matrix(
    index: CatalogIndex,
    profile: Profile,
    personal: PersonalModel | None,
    rows: np.ndarray,
    aff: _Affinity,
) -> np.ndarray:
    """The hybrid features of FEATURE_NAMES for the given catalog rows."""
    n = max(profile.tracks, 1)
    artist = aff.artist(rows)
    artist_total = index.artist_sizes[index.artist[rows]]
    pop = index.popularity[rows]
    held_pop = index.popularity[profile.rows]
    pop_mean = np.nanmean(held_pop) if np.isfinite(held_pop).any() else np.nan
    audio = index.audio[rows]
    nearest = np.full(len(rows), np.nan)
    if len(profile.held_audio):
        diffs = audio[:, None, :] - profile.held_audio[None, :, :]
        nearest = np.sqrt(np.min(np.mean(diffs**2, axis=2), axis=1))
    personal_score = (
        personal.decision(index, rows)
        if personal is not None and not profile.fallback
        else np.full(len(rows), np.nan)
    )
    return np.column_stack(
        [
            artist / n,
            artist,
            artist / np.maximum(artist_total, 1),
            aff.album(rows),
            aff.song_owned(rows).astype(np.float64),
            aff.subgenre(rows),
            aff.genre(rows),
            pop,
            pop - pop_mean,
            audio_distance(audio, index.audio_sq[rows], profile.audio),
            nearest,
            personal_score,
            np.full(len(rows), np.log1p(profile.tracks)),
            np.full(len(rows), float(profile.fallback)),
        ]
    )


def rank(
    index: CatalogIndex,
    model: GlobalModel,
    profile: Profile,
    personal: PersonalModel | None,
    *,
    exclude: np.ndarray,
    limit: int,
    max_per_artist: int | None = None,
) -> Ranked:
    """Top `limit` rows by the hybrid score, at most max_per_artist per artist (None: no cap)."""
    rows, aff = candidates(index, profile, exclude=exclude, n=max(model.n_candidates, limit))
    if len(rows) == 0:
        return Ranked(rows=rows, scores=np.zeros(0), features=np.zeros((0, len(FEATURE_NAMES))))
    features = feature_matrix(index, profile, personal, rows, aff)
    scores = model.classifier.predict_proba(features)[:, 1]
    order = np.lexsort((rows, -aff.prescore(rows), -scores))
    if max_per_artist is not None:
        order = order[cap_per_artist(index.artist[rows[order]], max_per_artist, limit)]
    order = order[:limit]
    return Ranked(rows=rows[order], scores=scores[order], features=features[order])


def cap_per_artist(artists: np.ndarray, cap: int, limit: int) -> np.ndarray:
    """Positions (in order) of the first `limit` items keeping at most `cap` per artist."""
    kept: list[int] = []
    seen: dict[int, int] = {}
    for i, a in enumerate(artists.tolist()):
        if seen.get(a, 0) < cap:
            seen[a] = seen.get(a, 0) + 1
            kept.append(i)
            if len(kept) == limit:
                break
    return np.asarray(kept, dtype=np.int64)


def drivers(features: np.ndarray) -> list[dict[str, float]]:
    """Readable drivers per ranked item (shares 0..1, audio similarity 0..1, personal as probability)."""
    col = {name: features[:, i] for i, name in enumerate(FEATURE_NAMES)}
    similarity = np.exp(-0.5 * col["audio_distance"] ** 2)
    personal = 1.0 / (1.0 + np.exp(-col["personal"]))
    values = {
        "artist_share": col["artist_share"],
        "album_share": col["album_share"],
        "subgenre_share": col["subgenre_share"],
        "genre_share": col["genre_share"],
        "audio_similarity": similarity,
        "personal": personal,
        "popularity": col["popularity"],
    }
    names = list(values)
    # One vectorised round and one tolist(), then plain dicts: this runs on every request.
    table = np.round(np.column_stack([values[n] for n in names]), 4)
    finite = np.isfinite(table).tolist()
    return [
        {n: v for n, v, ok in zip(names, row, oks, strict=True) if ok}
        for row, oks in zip(table.tolist(), finite, strict=True)
    ]
