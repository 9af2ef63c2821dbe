"""The catalog in memory, column by column, from the DB or from a catalog CSV.

Models train and score over these arrays; the same code serves from the DB and evaluates
from a file (`musicspace eval --catalog FILE`), so the two cannot drift apart.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from sys import intern
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from musicspace_shared.db.tables import Interaction, Track, User, UserTrack
from musicspace_shared.features import FEATURES

if TYPE_CHECKING:
    from musicspace_shared.selection import Columns

CATALOG_COLUMNS = (
    "track_id",
    "track_name",
    "track_artist",
    "track_popularity",
    "track_album_id",
    "track_album_name",
    "track_album_release_date",
    "genre",
    "subgenre",
    *FEATURES,
)


@dataclass
class TrackFrame:
    """Tracks as parallel arrays; features is (n, 9) with NaN where a track has none."""

    track_ids: list[str]
    titles: list[str]
    artists: list[str]
    albums: list[str]
    genres: list[str]
    subgenres: list[str]
    popularity: np.ndarray  # float, NaN when unknown
    features: np.ndarray  # (n, 9) float64
    features_source: list[str | None] = field(default_factory=list)
    # Album release dates as given ("1999", "1999-06-14"); empty when the source has none.
    release_dates: list[str | None] = field(default_factory=list)
    # When each row last changed (DB loads that ask for it); empty otherwise.
    updated_at: list[datetime | None] = field(default_factory=list)
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.index = {track_id: i for i, track_id in enumerate(self.track_ids)}

    def __len__(self) -> int:
        return len(self.track_ids)

    @property
    def has_features(self) -> np.ndarray:
        return ~np.isnan(self.features).any(axis=1)

    def rows(self, track_ids: list[str]) -> np.ndarray:
        """Row positions of the given ids that exist (unknown ids are dropped)."""
        return np.array([self.index[t] for t in track_ids if t in self.index], dtype=np.int64)

    def subset(self, positions: np.ndarray) -> TrackFrame:
        pick = [int(i) for i in positions]
        return TrackFrame(
            track_ids=[self.track_ids[i] for i in pick],
            titles=[self.titles[i] for i in pick],
            artists=[self.artists[i] for i in pick],
            albums=[self.albums[i] for i in pick],
            genres=[self.genres[i] for i in pick],
            subgenres=[self.subgenres[i] for i in pick],
            popularity=self.popularity[positions],
            features=self.features[positions],
            features_source=[self.features_source[i] for i in pick] if self.features_source else [],
            release_dates=[self.release_dates[i] for i in pick] if self.release_dates else [],
            updated_at=[self.updated_at[i] for i in pick] if self.updated_at else [],
        )


def _float(value: str | None) -> float:
    if value is None or value == "":
        return float("nan")
    try:
        return float(value)
    except ValueError:
        return float("nan")


def read_catalog_csv(path: Path) -> TrackFrame:
    """Read a file with the columns of catalog.csv.gz (gzip or plain)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:  # type: ignore[operator]
        rows = list(csv.DictReader(handle))
    seen: set[str] = set()
    unique = []
    for row in rows:
        if row["track_id"] and row["track_id"] not in seen:
            seen.add(row["track_id"])
            unique.append(row)
    feats = np.array([[_float(r.get(name)) for name in FEATURES] for r in unique], dtype=np.float64)
    return TrackFrame(
        track_ids=[r["track_id"] for r in unique],
        titles=[r.get("track_name") or "" for r in unique],
        artists=[r.get("track_artist") or "" for r in unique],
        albums=[r.get("track_album_name") or "" for r in unique],
        genres=[r.get("genre") or "" for r in unique],
        subgenres=[r.get("subgenre") or "" for r in unique],
        popularity=np.array([_float(r.get("track_popularity")) for r in unique], dtype=np.float64),
        features=feats.reshape(len(unique), len(FEATURES)),
        features_source=["measured" if not np.isnan(f).any() else None for f in feats],
        release_dates=[r.get("track_album_release_date") or None for r in unique],
    )


def read_playlists_csv(path: Path) -> dict[str, list[str]]:
    """playlist_id -> its track ids, in file order (the columns of playlists.csv.gz)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    playlists: dict[str, list[str]] = defaultdict(list)
    with opener(path, "rt", encoding="utf-8", newline="") as handle:  # type: ignore[operator]
        for row in csv.DictReader(handle):
            if row.get("playlist_id") and row.get("track_id"):
                playlists[row["playlist_id"]].append(row["track_id"])
    return dict(playlists)


# Rows fetched and converted per step when a whole table is read: a page costs about a
# millisecond of the event loop, so requests keep being served while a catalog (re)loads.
PAGE_ROWS = 500


async def stream_pages(session: AsyncSession, query: sa.Select) -> AsyncIterator[Sequence[sa.Row]]:
    """The query's rows, PAGE_ROWS at a time, with the event loop free between pages.

    Core execution on the session's connection (the ORM layer adds work per page). The
    explicit yield matters: once the server's answer sits in the socket buffer, fetching
    never suspends, and a whole table would be read in one go (~100 ms for the catalog)."""
    result = await (await session.connection()).stream(query)
    async for rows in result.partitions(PAGE_ROWS):
        yield rows
        await asyncio.sleep(0)


async def load_tracks(
    session: AsyncSession,
    track_ids: list[str] | None = None,
    *,
    updated_since: datetime | None = None,
    with_updated_at: bool = False,
) -> TrackFrame:
    """All tracks from the DB (or just the given ids, or those updated at/after
    `updated_since`), ordered by track_id; `with_updated_at` fills frame.updated_at.

    Read as a stream, PAGE_ROWS at a time: between pages the event loop serves requests."""
    columns = [
        Track.track_id,
        Track.title,
        Track.artist,
        Track.album,
        Track.genre,
        Track.subgenre,
        Track.popularity,
        *(getattr(Track, name) for name in FEATURES),
        Track.features_source,
        Track.release_date,
        *([Track.updated_at] if with_updated_at else []),
    ]
    query = sa.select(*columns).order_by(Track.track_id)
    if track_ids is not None:
        query = query.where(col(Track.track_id).in_(track_ids))
    if updated_since is not None:
        query = query.where(col(Track.updated_at) >= updated_since)
    pages = [_track_page(rows, with_updated_at) async for rows in stream_pages(session, query)]
    if not pages:
        return _track_page([], with_updated_at)
    return pages[0] if len(pages) == 1 else concat_frames(pages)


def _track_page(rows: Sequence[sa.Row], with_updated_at: bool) -> TrackFrame:
    n = len(rows)
    after = 7 + len(FEATURES)  # features_source, release_date[, updated_at]
    columns = list(zip(*rows, strict=True)) if n else [()] * (after + 3)
    # None -> NaN by the float conversion itself (a third of the time of a test per value).
    features = np.array(columns[7:after], dtype=np.float64).reshape(len(FEATURES), n)
    # Repeated labels (artist, album, genre, source, date) as one string object each, not
    # one per row (no change in m3's resident memory measured at 150k tracks, though).
    return TrackFrame(
        track_ids=list(columns[0]),
        titles=[v or "" for v in columns[1]],
        artists=_labels(columns[2]),
        albums=_labels(columns[3]),
        genres=_labels(columns[4]),
        subgenres=_labels(columns[5]),
        popularity=np.array(columns[6], dtype=np.float64),
        features=np.ascontiguousarray(features.T),
        features_source=_interned(columns[after]),
        release_dates=_interned(columns[after + 1]),
        updated_at=list(columns[after + 2]) if with_updated_at else [],
    )


def _labels(values: Sequence[str | None]) -> list[str]:
    return [intern(v) if v else "" for v in values]


def _interned(values: Sequence[str | None]) -> list[str | None]:
    return [None if v is None else intern(v) for v in values]


def concat_frames(frames: Sequence[TrackFrame]) -> TrackFrame:
    """One frame holding the rows of `frames` in order (optional columns kept when all have them)."""

    def joined(name: str) -> list:
        parts = [getattr(f, name) for f in frames]
        if any(len(p) != len(f) for p, f in zip(parts, frames, strict=True)):
            return []
        return [v for p in parts for v in p]

    return TrackFrame(
        track_ids=joined("track_ids"),
        titles=joined("titles"),
        artists=joined("artists"),
        albums=joined("albums"),
        genres=joined("genres"),
        subgenres=joined("subgenres"),
        popularity=np.concatenate([f.popularity for f in frames]),
        features=np.concatenate([f.features.reshape(-1, len(FEATURES)) for f in frames]),
        features_source=joined("features_source"),
        release_dates=joined("release_dates"),
        updated_at=joined("updated_at"),
    )


async def load_user_tracks(
    session: AsyncSession, user_id: int | None = None
) -> dict[int, list[str]]:
    """user_id -> PMS track ids (all users, or one)."""
    query = sa.select(col(UserTrack.user_id), col(UserTrack.track_id)).order_by(
        col(UserTrack.user_id), col(UserTrack.track_id)
    )
    if user_id is not None:
        query = query.where(col(UserTrack.user_id) == user_id)
    result: dict[int, list[str]] = defaultdict(list)
    for uid, track_id in (await session.execute(query)).all():
        result[uid].append(track_id)
    return dict(result)


@dataclass
class UserInteractions:
    play_count: dict[str, int]
    like_score: dict[str, int]
    skip_count: dict[str, int]

    @property
    def disliked(self) -> set[str]:
        return {t for t, score in self.like_score.items() if score < 0}

    @property
    def liked(self) -> set[str]:
        return {t for t, score in self.like_score.items() if score > 0}


async def load_interactions(
    session: AsyncSession, user_id: int | None = None
) -> dict[int, UserInteractions]:
    """user_id -> that user's interactions (all users, or one)."""
    query = sa.select(
        col(Interaction.user_id),
        col(Interaction.track_id),
        col(Interaction.play_count),
        col(Interaction.like_score),
        col(Interaction.skip_count),
    )
    if user_id is not None:
        query = query.where(col(Interaction.user_id) == user_id)
    result: dict[int, UserInteractions] = {}
    for uid, track_id, plays, like, skips in (await session.execute(query)).all():
        entry = result.setdefault(uid, UserInteractions({}, {}, {}))
        entry.play_count[track_id] = plays
        entry.like_score[track_id] = like
        entry.skip_count[track_id] = skips
    return result


async def user_exists(session: AsyncSession, user_id: int) -> bool:
    return (
        await session.execute(sa.select(col(User.id)).where(col(User.id) == user_id))
    ).first() is not None


CatalogVersion = tuple[int, str]


# count(*) reads a whole index (0.3-0.5 s of the DB server's time at 1M tracks, ten times
# that at 10M), max(updated_at) one entry of one. Every write the services and the CLI make to
# a track stamps its updated_at, so the latest time moves with each of them and the count is
# read again then; what only a count sees (a track deleted by hand) is caught within
# COUNT_MAX_AGE_S, when the count per database is read again anyway.
COUNT_MAX_AGE_S = 300.0
_counts: dict[str, tuple[str, int, float]] = {}  # database -> (latest, count, read at)


async def catalog_version(session: AsyncSession) -> CatalogVersion:
    """(track count, latest updated_at): moves whenever a track is added or changed, and
    within COUNT_MAX_AGE_S when one is removed. One index lookup, and the count only when the
    latest time moved or the last count is older than COUNT_MAX_AGE_S."""
    latest_at = (await session.execute(sa.select(sa.func.max(Track.updated_at)))).scalar()
    latest = "" if latest_at is None else str(latest_at)
    database = session.bind.engine.url.render_as_string(hide_password=True)
    now = time.monotonic()
    held = _counts.get(database)
    if held is not None and held[0] == latest and now - held[2] < COUNT_MAX_AGE_S:
        return held[1], latest
    # A write between the two reads moves the latest time again: the next check counts anew.
    count = int(
        (await session.execute(sa.select(sa.func.count()).select_from(Track))).scalar() or 0
    )
    _counts[database] = (latest, count, now)
    return count, latest


def label_codes(values: Sequence[str], *, fold: bool = True) -> tuple[np.ndarray, list[str]]:
    """Integer codes for labels (case and surrounding spaces folded, unless `fold` is False)
    and the labels in code order; "" (unknown) is a label like any other."""
    labels = [v.strip().lower() for v in values] if fold else values
    code_of = {label: code for code, label in enumerate(dict.fromkeys(labels))}
    codes = np.fromiter(map(code_of.__getitem__, labels), dtype=np.int64, count=len(labels))
    return codes, list(code_of)


@dataclass
class CatalogLabels:
    """The part of a catalog index every recommender builds the same way: the frame and an
    integer code per track for its artist, album (per artist), genre and subgenre."""

    frame: TrackFrame
    artist: np.ndarray
    album: np.ndarray
    genre: np.ndarray
    subgenre: np.ndarray
    n_artists: int
    n_albums: int
    n_genres: int
    n_subgenres: int
    genre_names: list[str]
    subgenre_names: list[str]

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def track_ids(self) -> list[str]:
        return self.frame.track_ids

    @cached_property
    def columns(self) -> Columns:
        """What the shared post-ranking steps read (musicspace_shared.selection), built once."""
        from musicspace_shared.selection import columns_of  # selection imports this module

        return columns_of(self.frame, artists=self.artist)

    # Rows by artist and by (subgenre, genre) group, for candidate stages that read a user's
    # artists and groups instead of the whole catalog (top_rows_by_group). Built once per
    # index: call prepare_groups() where the index is built (a rebuild worker), so they
    # travel with it.

    @cached_property
    def artist_sizes(self) -> np.ndarray:
        """Tracks per artist code."""
        return np.bincount(self.artist, minlength=self.n_artists)

    @cached_property
    def _by_artist(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows in artist order (ascending within one) and where each artist starts."""
        order = np.argsort(self.artist, kind="stable")
        return order, np.concatenate([[0], np.cumsum(self.artist_sizes)])

    @cached_property
    def _groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The (subgenre, genre) pairs that have tracks: each one's subgenre and genre, the
        rows in group order (ascending within one) and where each group starts."""
        width = max(self.n_genres, 1)
        keys, group = np.unique(
            self.subgenre.astype(np.int64) * width + self.genre, return_inverse=True
        )
        order = np.argsort(group, kind="stable")
        starts = np.concatenate([[0], np.cumsum(np.bincount(group, minlength=len(keys)))])
        return keys // width, keys % width, order, starts

    @property
    def group_subgenre(self) -> np.ndarray:
        return self._groups[0]

    @property
    def group_genre(self) -> np.ndarray:
        return self._groups[1]

    def rows_of_group(self, group: int) -> np.ndarray:
        _, _, order, starts = self._groups
        return order[starts[group] : starts[group + 1]]

    def rows_of_artists(self, artists: np.ndarray) -> np.ndarray:
        order, starts = self._by_artist
        if not len(artists):
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([order[starts[a] : starts[a + 1]] for a in artists.tolist()])

    def group_slice(self, group: int) -> slice:
        """Where group `group`'s rows (rows_of_group) sit in arrays put in_group_order."""
        starts = self._groups[3]
        return slice(int(starts[group]), int(starts[group + 1]))

    def in_group_order(self, values: np.ndarray) -> np.ndarray:
        """`values` (one per row along the first axis) with each group's rows contiguous: a
        group is then read as a slice instead of gathered from the whole catalog (at 1M tracks
        a gather over a 50k-row group costs about 1 ms per array, a slice nothing)."""
        return np.take(values, self._groups[2], axis=0)

    def prepare_groups(self) -> None:
        for name in ("artist_sizes", "_by_artist", "_groups"):
            getattr(self, name)


@dataclass
class GroupedInputs:
    """A candidate scan's per-track inputs in group order (CatalogLabels.in_group_order)."""

    audio: np.ndarray
    audio_sq: np.ndarray
    popularity: np.ndarray  # the scan's popularity input or term

    @classmethod
    def of(
        cls, labels: CatalogLabels, audio: np.ndarray, audio_sq: np.ndarray, popularity: np.ndarray
    ) -> GroupedInputs:
        return cls(
            audio=labels.in_group_order(audio),
            audio_sq=labels.in_group_order(audio_sq),
            popularity=labels.in_group_order(popularity),
        )


class RowGroups(Protocol):
    """Rows cut into groups (CatalogLabels: the (subgenre, genre) groups)."""

    def rows_of_group(self, group: int) -> np.ndarray: ...


def top_rows_by_group(
    labels: RowGroups,
    *,
    n: int,
    skip: np.ndarray,
    first: np.ndarray,
    bound: np.ndarray,
    score: Callable[[np.ndarray], np.ndarray],
    batch_rows: int = 0,
    score_group: Callable[[int], tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The n rows with the highest `score` (equal scores: the lower row first) among those
    not in `skip` (a bool per row), and their scores, without scoring the whole catalog.

    `first` (distinct rows: e.g. the user's artists' tracks, their co-listened tracks) is
    scored first; every other row of (subgenre, genre) group g must score at most `bound[g]`.
    The groups are then scored in order of their bound until the n-th best so far beats the
    next group's bound: a user's first groups usually settle it. Many skipped rows (filters) make it read more
    groups, at worst all of them: never a different answer. `skip` is modified (the rows
    scored are marked). With `batch_rows`, the next groups in bound order are scored together
    until they hold that many rows (fewer calls of `score` when groups are small).
    `score_group(g)` gives every row of group g and its score, as `score` would for the rows
    not in `first` (it may be wrong for those: they are skipped): a caller whose groups are laid
    out contiguously scores slices instead of gathering rows from the whole catalog."""
    first = first[~skip[first]]
    skip[first] = True
    n = min(n, len(first) + int((~skip).sum()))
    if n <= 0:
        return first[:0], np.zeros(0)
    rows, scores = _keep_best(first, score(first), n)
    groups, at = np.argsort(-bound, kind="stable"), 0
    while at < len(groups):
        if len(scores) >= n and _nth_largest(scores, n) > bound[groups[at]]:
            break
        if score_group is not None:
            more, more_scores = score_group(int(groups[at]))
            at += 1
            keep = ~skip[more]
            more, more_scores = more[keep], more_scores[keep]
        else:
            batch: list[np.ndarray] = []
            size = 0
            while at < len(groups) and (not batch or size < batch_rows):
                batch.append(labels.rows_of_group(int(groups[at])))
                size, at = size + len(batch[-1]), at + 1
            more = np.concatenate(batch) if len(batch) > 1 else batch[0]
            more = more[~skip[more]]
            more_scores = score(more) if len(more) else np.zeros(0)
        if len(more):
            rows, scores = _keep_best(
                np.concatenate([rows, more]), np.concatenate([scores, more_scores]), n
            )
    order = np.lexsort((rows, -scores))[:n]
    return rows[order], scores[order]


def _keep_best(rows: np.ndarray, scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows scoring at least the n-th best (ties kept), when the list is long."""
    if len(scores) <= 4 * n:
        return rows, scores
    keep = scores >= _nth_largest(scores, n)
    return rows[keep], scores[keep]


def _nth_largest(values: np.ndarray, n: int) -> float:
    return float(np.partition(values, len(values) - n)[len(values) - n])


def catalog_labels(frame: TrackFrame) -> dict[str, Any]:
    """The CatalogLabels fields of a frame, to build a subclass with (`Index(**labels, ...)`)."""
    artist, artists = label_codes(frame.artists)
    album, albums = label_codes(
        [f"{a}\x1f{b}" for a, b in zip(frame.artists, frame.albums, strict=True)]
    )
    genre, genres = label_codes(frame.genres)
    subgenre, subgenres = label_codes(frame.subgenres)
    return {
        "frame": frame,
        "artist": artist,
        "album": album,
        "genre": genre,
        "subgenre": subgenre,
        "n_artists": max(len(artists), 1),
        "n_albums": max(len(albums), 1),
        "n_genres": max(len(genres), 1),
        "n_subgenres": max(len(subgenres), 1),
        "genre_names": genres,
        "subgenre_names": subgenres,
    }
