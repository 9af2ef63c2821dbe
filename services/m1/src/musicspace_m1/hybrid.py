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


def _shares(codes: np.ndarray, held: np.ndarray, size: int) -> np.ndarray:
    """Per catalog row: how many of the user's tracks share its code."""
    return np.bincount(codes[held], minlength=size)[codes]


def audio_distance(audio: np.ndarray, audio_sq: np.ndarray, profile: AudioProfile) -> np.ndarray:
    """RMS distance to the profile mean in units of the profile's spread (NaN without features).

    sum_j w_j (a_j - m_j)^2 expanded into two mat-vec products: the catalog-wide pass costs
    well under a millisecond.
    """
    w = 1.0 / profile.spread**2
    sq = audio_sq @ w - 2.0 * (audio @ (w * profile.mean)) + float(np.sum(w * profile.mean**2))
    return np.sqrt(np.maximum(sq, 0.0) / len(w))


@dataclass
class _Affinity:
    artist: np.ndarray
    album: np.ndarray
    subgenre: np.ndarray
    genre: np.ndarray
    song: np.ndarray
    prescore: np.ndarray


def _affinity(index: CatalogIndex, profile: Profile) -> _Affinity:
    held, n = profile.rows, max(profile.tracks, 1)
    artist = _shares(index.artist, held, index.n_artists)
    album = _shares(index.album, held, index.n_albums) / n
    subgenre = _shares(index.subgenre, held, index.n_subgenres) / n
    genre = _shares(index.genre, held, index.n_genres) / n
    song = _shares(index.song, held, index.n_songs)
    closeness = np.nan_to_num(
        np.exp(-0.5 * audio_distance(index.audio, index.audio_sq, profile.audio) ** 2), nan=0.0
    )
    pop = np.nan_to_num(index.popularity, nan=0.0)
    # Weights of the candidate stage only (recall, not order): artists first, then albums,
    # subgenres, genres; audio and popularity break ties among the rest.
    prescore = (
        4.0 * artist / n + 2.0 * album + subgenre + 0.3 * genre + 0.2 * closeness + 0.05 * pop
    )
    return _Affinity(
        artist=artist, album=album, subgenre=subgenre, genre=genre, song=song, prescore=prescore
    )


def candidates(
    index: CatalogIndex, profile: Profile, *, exclude: np.ndarray, n: int
) -> tuple[np.ndarray, _Affinity]:
    """The n best tracks by the cheap affinity score, without the excluded rows."""
    aff = _affinity(index, profile)
    score = aff.prescore.copy()
    score[exclude] = -np.inf
    n = min(n, len(score) - len(np.unique(exclude)))
    if n <= 0:
        return np.zeros(0, dtype=np.int64), aff
    top = np.argpartition(-score, n - 1)[:n]
    # Stable order (score, then catalog row) so equal inputs give equal outputs.
    top = top[np.lexsort((top, -score[top]))]
    return top, aff


def feature_matrix(
    index: CatalogIndex,
    profile: Profile,
    personal: PersonalModel | None,
    rows: np.ndarray,
    aff: _Affinity,
) -> np.ndarray:
    """The hybrid features of FEATURE_NAMES for the given catalog rows."""
    n = max(profile.tracks, 1)
    artist_total = np.bincount(index.artist, minlength=index.n_artists)[index.artist[rows]]
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
            aff.artist[rows] / n,
            aff.artist[rows],
            aff.artist[rows] / np.maximum(artist_total, 1),
            aff.album[rows],
            (aff.song[rows] > 0).astype(np.float64),
            aff.subgenre[rows],
            aff.genre[rows],
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
    order = np.lexsort((rows, -aff.prescore[rows], -scores))
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
