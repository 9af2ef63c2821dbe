"""The in-memory search index: track attributes as arrays plus their document vectors.

Chroma holds the vectors durably (and shares them between replicas); each process mirrors
them here so one query scores every track with a single matrix product plus the structured
attribute match, which Chroma's nearest-neighbour query alone cannot express. A snapshot is
immutable: a sync builds a new one and swaps the reference, so readers never see a half update.
"""

from __future__ import annotations

import threading
from dataclasses import InitVar, dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

import numpy as np

from musicspace_llm.ann import ANN_MIN_TRACKS, Neighbours
from musicspace_llm.crossscript import ArtistNames
from musicspace_llm.lexical import LexicalIndex
from musicspace_llm.projection import MIN_TRACKS as PROJECTION_MIN_TRACKS
from musicspace_llm.projection import Projection
from musicspace_shared.catalog import TrackFrame
from musicspace_shared.features import FEATURES
from musicspace_shared.heap import collector_paused
from musicspace_shared.selection import Columns, columns_of

# Built from the titles, artists and albums alone: seconds of Python per 100k tracks.
_NAME_PARTS = ("_lexical", "_artist_names", "_artist_rows")

# Scale every feature to 0..1 so "high"/"low" mean the same for tempo and loudness.
_TEMPO = (60.0, 180.0)
_LOUDNESS = (-25.0, 0.0)


def unit_features(features: np.ndarray) -> np.ndarray:
    unit = np.array(features, dtype=np.float64, copy=True)
    t, loud = FEATURES.index("tempo"), FEATURES.index("loudness")
    unit[:, t] = (unit[:, t] - _TEMPO[0]) / (_TEMPO[1] - _TEMPO[0])
    unit[:, loud] = (unit[:, loud] - _LOUDNESS[0]) / (_LOUDNESS[1] - _LOUDNESS[0])
    with np.errstate(invalid="ignore"):
        return np.clip(unit, 0.0, 1.0)


@dataclass
class TrackIndex:
    frame: TrackFrame
    decades: np.ndarray  # int, 0 when unknown
    vectors: np.ndarray  # (n, dim) float32, L2-normalised
    watermark: datetime | None = None  # max(updated_at) seen from the DB
    # Name indexes this snapshot may take over (TrackIndex.name_parts of a snapshot with the
    # same titles, artists and albums in the same rows: a sync that changed only features,
    # popularity or genres; or the snapshot saved on the volume).
    names: InitVar[dict[str, Any] | None] = None
    unit: np.ndarray = field(init=False, repr=False)
    sub_codes: np.ndarray = field(init=False, repr=False)
    genre_codes: np.ndarray = field(init=False, repr=False)
    sub_names: list[str] = field(init=False, repr=False)
    genre_names: list[str] = field(init=False, repr=False)
    popularity: np.ndarray = field(init=False, repr=False)
    _names_lock: threading.Lock = field(init=False, repr=False, compare=False)
    _projection_lock: threading.Lock = field(init=False, repr=False, compare=False)
    # Set once warm() has built what searches read (the service reports ready only then).
    warmed: threading.Event = field(
        default_factory=threading.Event, init=False, repr=False, compare=False
    )
    # The vector store's nearest-neighbour index, for catalogs past ann.ANN_MIN_TRACKS (the
    # manager attaches it); None: every candidate is scored exactly.
    neighbours: Neighbours | None = field(default=None, init=False, repr=False, compare=False)
    # A track's own fields as answers show them (render.py), for tracks already shown.
    shown: dict[int, dict[str, Any]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # "like <artist>" lifts of the artists asked about last (query.like_artist).
    similar_lifts: dict[str, Any] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self, names: dict[str, Any] | None) -> None:
        # Column-major: a search reads a feature of every track, contiguous this way.
        self.unit = np.asfortranarray(
            unit_features(self.frame.features) if len(self.frame) else np.zeros((0, len(FEATURES)))
        )
        self.sub_names = sorted(set(self.frame.subgenres))
        self.genre_names = sorted(set(self.frame.genres))
        sub_pos = {name: i for i, name in enumerate(self.sub_names)}
        genre_pos = {name: i for i, name in enumerate(self.genre_names)}
        self.sub_codes = np.array([sub_pos[s] for s in self.frame.subgenres], dtype=np.int64)
        self.genre_codes = np.array([genre_pos[g] for g in self.frame.genres], dtype=np.int64)
        pop = np.nan_to_num(self.frame.popularity, nan=0.0)
        self.popularity = np.clip(pop / 100.0, 0.0, 1.0)
        self._names_lock = threading.Lock()
        self._projection_lock = threading.Lock()
        self.__dict__.update({k: v for k, v in (names or {}).items() if k in _NAME_PARTS})
        # Build the name indexes now, beside whatever made this snapshot, so searches do not
        # wait for them (they take the lock and wait only if they come before it is done).
        threading.Thread(target=self.warm, name="llm-name-indexes", daemon=True).start()

    def warm(self) -> None:
        """Build what searches read of this snapshot: the name indexes (lexical, artist sounds),
        each artist's rows, the release years and decades, the feature leans, the columns of
        the shared post-ranking steps (with their years and label codes) and, below
        ANN_MIN_TRACKS, the projection (past it the vector store's index serves instead: built
        only if asked). Each takes up to seconds of Python at 1M tracks: the first search that
        needed one would wait for it."""
        try:
            self.lexical, self.artist_names  # noqa: B018 - properties build and keep them
            self._artist_rows, self.years, self.era_slots, self.leans  # noqa: B018
            self.columns.years, self.columns.codes("genres"), self.columns.codes("subgenres")
            if len(self) < ANN_MIN_TRACKS:
                self.projection  # noqa: B018
        finally:  # a part that failed to build fails the searches that read it, not readiness
            self.warmed.set()

    def __len__(self) -> int:
        return len(self.frame)

    def name_parts(self) -> dict[str, Any]:
        """What is built from the titles, artists and albums alone (the parts built so far),
        for a snapshot with the same names in the same rows to take over."""
        return {k: self.__dict__[k] for k in _NAME_PARTS if k in self.__dict__}

    # The name indexes take seconds for the full catalog: built once per snapshot (by warm,
    # or by the first search that needs one), under a lock so only one thread builds.
    @property
    def names_ready(self) -> bool:
        """Whether the name indexes are built (reading them cannot wait for the lock)."""
        return "_lexical" in self.__dict__ and "_artist_names" in self.__dict__

    @property
    def lexical(self) -> LexicalIndex:
        """Titles, artists and albums as an inverted index (known items, artist names)."""
        with self._names_lock:
            if "_lexical" not in self.__dict__:
                with collector_paused():
                    self.__dict__["_lexical"] = LexicalIndex(
                        self.frame.titles, self.frame.artists, self.frame.albums
                    )
            return self.__dict__["_lexical"]

    @property
    def artist_names(self) -> ArtistNames:
        """Artist names by sound, for names typed in Hangul."""
        with self._names_lock:
            if "_artist_names" not in self.__dict__:
                with collector_paused():
                    self.__dict__["_artist_names"] = ArtistNames(self.frame.artists)
            return self.__dict__["_artist_names"]

    @cached_property
    def _artist_rows(self) -> tuple[dict[str, int], np.ndarray, np.ndarray]:
        """Each artist's code, the rows in artist-code order and where each code's rows start
        (one array for the catalog, not an array per artist)."""
        codes: dict[str, int] = {}
        track_codes = np.fromiter(
            (codes.setdefault(a, len(codes)) for a in self.frame.artists), np.int64, len(self)
        )
        order = np.argsort(track_codes, kind="stable")
        starts = np.searchsorted(track_codes[order], np.arange(len(codes) + 1))
        return codes, order, starts

    def artist_rows(self, artist: str) -> np.ndarray:
        """Rows of one artist's tracks, ascending."""
        codes, order, starts = self._artist_rows
        code = codes.get(artist)
        if code is None:
            return np.zeros(0, dtype=np.int64)
        return order[starts[code] : starts[code + 1]]

    @cached_property
    def leans(self) -> dict[str, np.ndarray]:
        """How far each track leans each way ("energy:high", "tempo:low"): 0..1, 0 when unknown."""
        out = {}
        for j, name in enumerate(FEATURES):
            column = self.unit[:, j]
            out[f"{name}:high"] = np.nan_to_num(column, nan=0.0)
            out[f"{name}:low"] = np.nan_to_num(1.0 - column, nan=0.0)
        return out

    @property
    def projection(self) -> Projection | None:
        """The vectors in their principal directions (projection.py), for catalogs of at least
        PROJECTION_MIN_TRACKS tracks; built once per snapshot (by warm, or the first search
        that needs it, under a lock)."""
        if len(self) < PROJECTION_MIN_TRACKS or self.vectors.ndim != 2:
            return None
        with self._projection_lock:
            if "_projection" not in self.__dict__:
                self.__dict__["_projection"] = Projection.fit(self.vectors)
            return self.__dict__["_projection"]

    @cached_property
    def columns(self) -> Columns:
        """What the shared post-ranking steps read (musicspace_shared.selection)."""
        return columns_of(self.frame)

    @cached_property
    def years(self) -> np.ndarray:
        """Album release year per track (0 when unknown)."""
        dates = self.frame.release_dates or []
        if len(dates) != len(self.frame):
            return np.where(self.decades > 0, self.decades, 0)  # only the decade is known
        return np.array(
            [int(d[:4]) if d and len(d) >= 4 and d[:4].isdigit() else 0 for d in dates],
            dtype=np.int64,
        )

    @cached_property
    def era_slots(self) -> np.ndarray:
        """Each track's decade as a slot of 10 years from year 0 (0 when unknown), for a
        per-decade table of 211 slots (years 0-2100)."""
        return np.clip(self.decades // 10, 0, 210)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1]) if self.vectors.ndim == 2 else 0

    def upserted(self, other: TrackIndex) -> TrackIndex:
        """A new snapshot with `other`'s tracks replacing this one's in their rows, and those
        this one lacks appended. When no track is new and no title, artist or album changed,
        the name indexes (seconds of Python for the full catalog) carry over."""
        n = len(self)
        rows = self.frame.index
        pick = np.arange(n, dtype=np.int64)
        added: list[int] = []
        for j, track_id in enumerate(other.frame.track_ids):
            at = rows.get(track_id)
            if at is None:
                added.append(n + j)
            else:
                pick[at] = n + j
        pick = np.concatenate([pick, np.array(added, dtype=np.int64)])
        frame = _concat_frames(self.frame, other.frame).subset(pick)
        replaced = np.flatnonzero(pick[:n] >= n)
        same_names = not added and all(
            getattr(self.frame, name)[i] == getattr(frame, name)[i]
            for name in ("titles", "artists", "albums")
            for i in replaced
        )
        watermark = max(
            (w for w in (self.watermark, other.watermark) if w is not None), default=None
        )
        # Every row below n comes from this snapshot in its own row or from `other`: one copy
        # of the vectors, not a concatenation and then a gather (at 1M, 2 GB each).
        from_other = np.flatnonzero(pick >= n)
        vectors = np.empty((len(pick), self.vectors.shape[1]), dtype=np.float32)
        vectors[:n] = self.vectors
        vectors[from_other] = other.vectors[pick[from_other] - n]
        decades = np.concatenate([self.decades, np.zeros(len(added), dtype=self.decades.dtype)])
        decades[from_other] = other.decades[pick[from_other] - n]
        return TrackIndex(
            frame=frame,
            decades=decades,
            vectors=vectors,
            watermark=watermark,
            names=self.name_parts() if same_names else None,
        )


def _concat_frames(a: TrackFrame, b: TrackFrame) -> TrackFrame:
    return TrackFrame(
        track_ids=a.track_ids + b.track_ids,
        titles=a.titles + b.titles,
        artists=a.artists + b.artists,
        albums=a.albums + b.albums,
        genres=a.genres + b.genres,
        subgenres=a.subgenres + b.subgenres,
        popularity=np.concatenate([a.popularity, b.popularity]),
        features=np.concatenate(
            [a.features.reshape(-1, len(FEATURES)), b.features.reshape(-1, len(FEATURES))]
        ),
        features_source=(a.features_source or [None] * len(a))
        + (b.features_source or [None] * len(b)),
        release_dates=(a.release_dates or [None] * len(a)) + (b.release_dates or [None] * len(b)),
    )
