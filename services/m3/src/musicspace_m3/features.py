"""Two stages over one catalog index: candidate generation, then the ranker's feature matrix.

The service, the global training, the per-user fine-tuning and the offline evaluation all call
these functions, so what is measured is what is served.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field

import numpy as np

from musicspace_m3.catalog_index import CatalogIndex
from musicspace_m3.collab import Collab
from musicspace_shared.catalog import top_rows_by_group
from musicspace_shared.features import FEATURES
from musicspace_shared.rowwise import row_dot

FEATURE_NAMES: tuple[str, ...] = (
    "artist_share",
    "artist_count",
    "album_share",
    "subgenre_share",
    "genre_share",
    "artist_size",
    "popularity",
    "popularity_vs_user",
    "subgenre_popularity_rank",
    "audio_distance",
    "audio_nearest",
    "audio_nearest5",
    "title_similarity",
    "cooc_users",
    "cooc_weight",
    "track_users",
    "track_negatives",
    "profile_size",
    "play_count",
    "like_score",
    "skip_count",
    "artist_subgenre_share",
    "has_audio",
    "year",
    "year_distance",
    "year_share",
    *(f"audio_{name}" for name in FEATURES),
)

# Explanations speak in these groups (a driver is a group's effect on the score).
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "artist": ("artist_share", "artist_count", "artist_subgenre_share", "artist_size"),
    "album": ("album_share",),
    "genre": ("subgenre_share", "genre_share"),
    "popularity": ("popularity", "popularity_vs_user", "subgenre_popularity_rank"),
    "era": ("year", "year_distance", "year_share"),
    "audio": (
        "audio_distance",
        "audio_nearest",
        "audio_nearest5",
        "has_audio",
        *(f"audio_{n}" for n in FEATURES),
    ),
    "title": ("title_similarity",),
    "co_listeners": ("cooc_users", "cooc_weight", "track_users", "track_negatives"),
    "history": ("play_count", "like_score", "skip_count"),
}


@dataclass
class Profile:
    """What the ranker knows about one user: positive tracks plus per-track interactions."""

    key: Hashable  # the user's row in Collab (excluded from co-occurrence)
    positives: np.ndarray  # catalog positions
    excluded: np.ndarray  # positions never recommended (owned, disliked)
    interactions: Mapping[int, tuple[int, int, int]] = field(
        default_factory=dict
    )  # pos -> (plays, like, skips)


@dataclass
class UserStats:
    """Per-user aggregates computed once per request, then gathered per candidate."""

    artist: np.ndarray
    album: np.ndarray
    genre: np.ndarray
    subgenre: np.ndarray
    artist_subgenre: np.ndarray  # sorted codes artist * n_subgenres + subgenre of the profile
    artist_subgenre_counts: np.ndarray
    centroid: np.ndarray
    pop_mean: float
    title: np.ndarray  # dense profile title vector (vocab,)
    cooc_users: np.ndarray
    cooc_weight: np.ndarray
    colistened: np.ndarray  # tracks held by users sharing a track with the profile, sorted
    track_users: np.ndarray  # users per track, the user counted where they hold it
    own_tracks: np.ndarray  # the tracks the user is counted in (their Collab row), sorted
    track_negatives: np.ndarray
    years: np.ndarray  # the profile's known release years, sorted
    size: int


def user_stats(index: CatalogIndex, collab: Collab, profile: Profile) -> UserStats:
    """Shares of artists/albums/genres, audio centroid, title profile and co-occurrence."""
    pos = profile.positives
    n = max(len(pos), 1)
    cooc_users, cooc_weight, colistened = collab.cooccurrence(pos, exclude=profile.key)
    pair_codes, pair_counts = np.unique(
        index.artist[pos] * index.n_subgenres + index.subgenre[pos], return_counts=True
    )
    title = np.asarray(index.titles[pos].sum(axis=0)).ravel() / n
    return UserStats(
        artist=_shares(index.artist[pos], index.n_artists, n),
        album=_shares(index.album[pos], index.n_albums, n),
        genre=np.bincount(index.genre[pos], minlength=index.n_genres) / n,
        subgenre=np.bincount(index.subgenre[pos], minlength=index.n_subgenres) / n,
        artist_subgenre=pair_codes,
        artist_subgenre_counts=pair_counts.astype(np.float32),
        centroid=(
            index.audio[pos].mean(axis=0) if len(pos) else np.zeros(index.audio.shape[1])
        ).astype(np.float32),
        pop_mean=float(index.popularity[pos].mean()) if len(pos) else 50.0,
        title=title.astype(np.float32),
        cooc_users=cooc_users,
        cooc_weight=cooc_weight,
        colistened=colistened,
        track_users=collab.track_users,
        own_tracks=collab.own_tracks(profile.key),
        track_negatives=collab.track_negatives,
        years=np.sort(index.year[pos][~np.isnan(index.year[pos])]),
        size=len(pos),
    )


def _shares(codes: np.ndarray, size: int, n: int) -> np.ndarray:
    """count(code) / n per code, `size` long: the same values as np.bincount(codes, minlength=
    size) / n, written only where the user has some (at 1M tracks there are ~800k albums; a
    whole bincount and its division cost ~2 ms a request)."""
    found, counts = np.unique(codes, return_counts=True)
    shares = np.zeros(size, dtype=np.float64)
    shares[found] = counts / n
    return shares


def prescore(index: CatalogIndex, stats: UserStats, rows: np.ndarray) -> np.ndarray:
    """The candidate prescore of catalog `rows` (float32): a fixed blend of the user's artists
    and albums, co-occurrence with other users, the user's subgenres and genres, audio
    closeness to the profile and popularity.

    A row's value does not depend on which other rows are scored with it (no BLAS
    mat-vec, whose rounding may follow a row's place in the block), so the whole-catalog
    scan and the group scan order equal scores the same way."""
    audio = np.take(index.audio, rows, axis=0)  # 8x faster than audio[rows] for (n, 9)
    artist = stats.artist[index.artist[rows]].astype(np.float32)
    album = stats.album[index.album[rows]].astype(np.float32)
    return (
        np.minimum(artist * 10.0, 1.0) * 3.0
        + np.minimum(album * 10.0, 1.0) * 2.0
        + 3.0 * stats.subgenre[index.subgenre[rows]].astype(np.float32)
        + stats.genre[index.genre[rows]].astype(np.float32)
        + np.minimum(stats.cooc_weight[rows] * 10.0, 2.0)
        + index.pop_term[rows]
        + _audio_term(audio, index.audio_sq[rows], stats.centroid)
    )


def _audio_term(audio: np.ndarray, audio_sq: np.ndarray, centroid: np.ndarray) -> np.ndarray:
    """The prescore's audio closeness to the profile's centroid, 0..0.3: |a|^2 - 2 a.c + |c|^2
    row by row (row_dot: a row's value is its own)."""
    d2 = audio_sq - 2.0 * row_dot(audio, centroid) + float(centroid @ centroid)
    return 0.3 * np.exp(-np.sqrt(np.maximum(d2, 0.0)) / 2.0)


# Above the audio and popularity terms' float32 rounding, below any real gap between scores.
_BOUND_SLACK = 1e-4
# Co-listened tracks scored first, the strongest by co-occurrence weight: the others' term is
# bounded by the weakest of those (at 10 interactions per track most of the catalog is
# co-listened by someone, mostly weakly).
_FIRST_COLISTENED = 2000


def candidates(
    index: CatalogIndex, stats: UserStats, profile: Profile, *, limit: int
) -> np.ndarray:
    """Up to `limit` catalog positions (not excluded) with the best prescore, best first;
    equal prescores by catalog position (the same answer as `candidates_full_scan`).

    Without scoring the whole catalog (musicspace_shared.catalog.top_rows_by_group): a track
    of none of the user's artists scores at most its (subgenre, genre) group's share terms,
    the audio and popularity terms' maxima and its co-occurrence term. So the user's
    artists' tracks and the `_FIRST_COLISTENED` most co-listened ones are scored first, then
    the best groups, each bounded with the co-occurrence term of the strongest track left,
    until the `limit`-th best beats the next group's bound."""
    skip = np.zeros(len(index), dtype=bool)
    skip[profile.excluded] = True
    artists = np.unique(index.artist[profile.positives])  # those with a share above 0
    colistened, cooc_left = _strongest(stats.colistened, stats.cooc_weight, _FIRST_COLISTENED)
    first = np.union1d(index.rows_of_artists(artists), colistened)
    share = 3.0 * stats.subgenre[index.group_subgenre] + stats.genre[index.group_genre]
    rest = 0.3 + index.pop_term_max + min(10.0 * cooc_left, 2.0) + _BOUND_SLACK
    rows, _ = top_rows_by_group(
        index,
        n=limit,
        skip=skip,
        first=first,
        bound=share + rest,
        score=lambda rows: prescore(index, stats, rows),
        score_group=lambda group: _group_prescore(index, stats, group),
    )
    return rows


def _group_prescore(
    index: CatalogIndex, stats: UserStats, group: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every row of `group` and its prescore, bit for bit, for the rows of none of the user's
    artists (the others are scored first): their artist and album terms are 0 and the shares
    the group's, so the sum is prescore's with its first two terms 0, read from slices."""
    at = index.group_slice(group)
    rows = index.rows_of_group(group)
    grouped = index.grouped
    shares = 3.0 * np.float32(stats.subgenre[index.group_subgenre[group]]) + np.float32(
        stats.genre[index.group_genre[group]]
    )
    return rows, (
        shares
        + np.minimum(stats.cooc_weight[rows] * 10.0, 2.0)
        + grouped.popularity[at]
        + _audio_term(grouped.audio[at], grouped.audio_sq[at], stats.centroid)
    )


def _strongest(rows: np.ndarray, weight: np.ndarray, n: int) -> tuple[np.ndarray, float]:
    """The n rows of `rows` with the highest weight, and the highest weight of the others."""
    if len(rows) <= n:
        return rows, 0.0
    w = weight[rows]
    order = np.argpartition(-w, n)
    return rows[order[:n]], float(w[order[n:]].max())


def candidates_full_scan(
    index: CatalogIndex, stats: UserStats, profile: Profile, *, limit: int
) -> np.ndarray:
    """`candidates` by scoring every track (the reference the group scan must equal)."""
    rows = np.arange(len(index))
    scores = prescore(index, stats, rows)
    keep = np.ones(len(index), dtype=bool)
    keep[profile.excluded] = False
    rows, scores = rows[keep], scores[keep]
    limit = min(limit, len(rows))
    if limit <= 0:
        return rows[:0]
    cut = np.partition(scores, len(scores) - limit)[len(scores) - limit]
    rows, scores = rows[scores >= cut], scores[scores >= cut]
    return rows[np.lexsort((rows, -scores))[:limit]]


def feature_matrix(
    index: CatalogIndex, stats: UserStats, profile: Profile, cands: np.ndarray
) -> np.ndarray:
    """(len(cands), len(FEATURE_NAMES)) float32 rows for the ranker."""
    pos = profile.positives
    art = index.artist[cands]
    sub = index.subgenre[cands]
    m = len(cands)
    out = np.zeros((m, len(FEATURE_NAMES)), dtype=np.float32)
    out[:, 0] = stats.artist[art]
    out[:, 1] = stats.artist[art] * stats.size
    out[:, 2] = stats.album[index.album[cands]]
    out[:, 3] = stats.subgenre[sub]
    out[:, 4] = stats.genre[index.genre[cands]]
    out[:, 5] = index.artist_size[cands]
    out[:, 6] = index.popularity[cands]
    out[:, 7] = index.popularity[cands] - stats.pop_mean
    out[:, 8] = index.pop_rank[cands]
    cand_audio = index.audio[cands]
    out[:, 9] = np.sqrt(
        np.maximum(
            index.audio_sq[cands]
            - 2.0 * (cand_audio @ stats.centroid)
            + float(stats.centroid @ stats.centroid),
            0.0,
        )
    )
    if len(pos):
        prof_audio = index.audio[pos]
        d2 = (
            index.audio_sq[cands][:, None]
            + index.audio_sq[pos][None, :]
            - 2.0 * cand_audio @ prof_audio.T
        )
        d = np.sqrt(np.maximum(d2, 0.0))
        k = min(5, d.shape[1])
        part = np.partition(d, k - 1, axis=1)[:, :k]
        out[:, 10] = part.min(axis=1)
        out[:, 11] = part.mean(axis=1)
    out[:, 12] = index.titles[cands] @ stats.title
    out[:, 13] = stats.cooc_users[cands]
    out[:, 14] = stats.cooc_weight[cands]
    # Other users only (a catalog-long copy without the user's row per request cost ~3 ms).
    out[:, 15] = stats.track_users[cands] - np.isin(cands, stats.own_tracks).astype(np.float32)
    out[:, 16] = stats.track_negatives[cands]
    out[:, 17] = stats.size
    if profile.interactions:
        for i, c in enumerate(cands.tolist()):
            hit = profile.interactions.get(c)
            if hit is not None:
                out[i, 18], out[i, 19], out[i, 20] = hit
    out[:, 21] = _lookup(
        stats.artist_subgenre, stats.artist_subgenre_counts, art * index.n_subgenres + sub
    ) / max(stats.size, 1)
    out[:, 22] = index.has_audio[cands]
    year = index.year[cands]
    out[:, 23] = year
    if stats.years.size:
        out[:, 24] = np.abs(year - float(np.median(stats.years)))
        near = np.searchsorted(stats.years, year + 2.5) - np.searchsorted(stats.years, year - 2.5)
        out[:, 25] = np.where(np.isnan(year), np.nan, near / stats.years.size)
    else:
        out[:, 24:26] = np.nan
    out[:, 26:] = index.frame.features[cands]
    return out


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """values[keys == q] for each q (0 where absent); keys sorted."""
    if keys.size == 0:
        return np.zeros(len(query), dtype=np.float32)
    at = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    return np.where(keys[at] == query, values[at], 0.0).astype(np.float32)
