"""What m2 knows about a track before it has audio features: its text and metadata.

`TrackInputs` is the one input shape for training, serving and evaluation (from the DB, from
a catalog file or from request items), so the three cannot drift apart.
"""

from __future__ import annotations

import csv
import gzip
import math
import re
import sys
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from musicspace_shared.features import FEATURES

_YEAR = re.compile(r"^(\d{4})")


def norm(text: str | None) -> str:
    """Lowercase, NFKC, collapsed spaces: the form keys and vectorizers see."""
    if not text:
        return ""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return " ".join(text.lower().split())


def year_of(release_date: str | None) -> float:
    match = _YEAR.match(release_date or "")
    return float(match.group(1)) if match else float("nan")


def duplicate_key(title: str | None, artist: str | None) -> str:
    """Same title and artist under another id: the same recording for m2's purposes."""
    return norm(title) + "\x1f" + norm(artist)


@dataclass
class TrackInputs:
    """Parallel arrays of track metadata; '' / NaN where unknown."""

    titles: list[str]
    artists: list[str]
    albums: list[str]
    album_ids: list[str]
    genres: list[str]
    subgenres: list[str]
    popularity: np.ndarray
    years: np.ndarray

    def __len__(self) -> int:
        return len(self.titles)

    def take(self, positions: np.ndarray) -> TrackInputs:
        pick = [int(i) for i in positions]
        return TrackInputs(
            titles=[self.titles[i] for i in pick],
            artists=[self.artists[i] for i in pick],
            albums=[self.albums[i] for i in pick],
            album_ids=[self.album_ids[i] for i in pick],
            genres=[self.genres[i] for i in pick],
            subgenres=[self.subgenres[i] for i in pick],
            popularity=self.popularity[positions],
            years=self.years[positions],
        )

    # Normalised text and keys are computed once per instance: callers index them row by row.
    @cached_property
    def norm_titles(self) -> list[str]:
        return [norm(t) for t in self.titles]

    @cached_property
    def norm_albums(self) -> list[str]:
        return [norm(a) for a in self.albums]

    @cached_property
    def artist_keys(self) -> list[str]:
        return [norm(a) for a in self.artists]

    @cached_property
    def album_keys(self) -> list[str]:
        # The album id when known; otherwise the album name within its artist.
        return [
            f"id:{aid}" if aid else (f"name:{art}\x1f{alb}" if alb else "")
            for aid, art, alb in zip(
                self.album_ids, self.artist_keys, self.norm_albums, strict=True
            )
        ]

    @cached_property
    def duplicate_keys(self) -> list[str]:
        return [t + "\x1f" + a for t, a in zip(self.norm_titles, self.artist_keys, strict=True)]

    def forget_normalised_text(self) -> None:
        """Drop the normalised titles and albums (computed again if asked): what a fit reads,
        not what a built content space keeps using (a string per row each)."""
        for name in ("norm_titles", "norm_albums", "album_keys", "duplicate_keys"):
            self.__dict__.pop(name, None)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _number(value: object) -> float:
    if value is None or value == "":
        return math.nan
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def inputs_from_rows(rows: list[dict[str, object]]) -> TrackInputs:
    """Build inputs from dicts with keys title, artist, album, album_id, genre, subgenre, popularity, release_date."""
    return inputs_from_columns(
        **{name: [r.get(name) for r in rows] for name in INPUT_COLUMNS}  # type: ignore[arg-type]
    )


INPUT_COLUMNS = (
    "title",
    "artist",
    "album",
    "album_id",
    "genre",
    "subgenre",
    "popularity",
    "release_date",
)


def inputs_from_columns(
    *,
    title: list[object],
    artist: list[object],
    album: list[object],
    album_id: list[object],
    genre: list[object],
    subgenre: list[object],
    popularity: list[object],
    release_date: list[object],
) -> TrackInputs:
    """Build inputs from one list per column (INPUT_COLUMNS), e.g. straight from DB rows."""
    # One pass per column with plain comprehensions: this runs for every predict-audio batch.
    return TrackInputs(
        titles=[_text(v) for v in title],
        artists=[_text(v) for v in artist],
        albums=[_text(v) for v in album],
        album_ids=[_text(v) for v in album_id],
        # A few dozen distinct values: one string object each, not one per row.
        genres=[sys.intern(norm(_text(v))) for v in genre],
        subgenres=[sys.intern(norm(_text(v))) for v in subgenre],
        popularity=np.array([_number(v) for v in popularity], dtype=np.float64),
        years=np.array(
            [year_of(_text(v)) if v else math.nan for v in release_date], dtype=np.float64
        ),
    )


@dataclass
class CatalogFile:
    """A catalog file read for m2: ids, inputs and the (n, 9) features (NaN where blank)."""

    track_ids: list[str]
    inputs: TrackInputs
    features: np.ndarray

    @property
    def has_features(self) -> np.ndarray:
        return ~np.isnan(self.features).any(axis=1)


def _float(value: str | None) -> float:
    try:
        return float(value) if value not in (None, "") else float("nan")
    except ValueError:
        return float("nan")


def read_catalog_file(path: Path) -> CatalogFile:
    """A file with the columns of catalog.csv.gz (gzip or plain); first row per track id wins."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:  # type: ignore[operator]
        raw = list(csv.DictReader(handle))
    seen: set[str] = set()
    rows = []
    for row in raw:
        if row.get("track_id") and row["track_id"] not in seen:
            seen.add(row["track_id"])
            rows.append(row)
    inputs = inputs_from_rows(
        [
            {
                "title": r.get("track_name"),
                "artist": r.get("track_artist"),
                "album": r.get("track_album_name"),
                "album_id": r.get("track_album_id"),
                "genre": r.get("genre"),
                "subgenre": r.get("subgenre"),
                "popularity": r.get("track_popularity"),
                "release_date": r.get("track_album_release_date"),
            }
            for r in rows
        ]
    )
    features = np.array(
        [[_float(r.get(name)) for name in FEATURES] for r in rows], dtype=np.float64
    )
    return CatalogFile(
        [r["track_id"] for r in rows], inputs, features.reshape(len(rows), len(FEATURES))
    )
