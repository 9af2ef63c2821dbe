"""Synthetic catalogs and users of any size, drawn from the demo data's distributions.

`musicspace generate --tracks 1000000 --users 100000 --out DIR` writes three files the
importer reads (`musicspace import catalog|playlists|interactions`). The same arguments and
seed give the same bytes, whatever the chunk sizes (`Chunks`: how many tracks, and how many
users, are made and written at a time). Memory is bounded by the chunks plus what is kept
across them: about 14 bytes a track and 16 an artist (catalog.py, users.py). How each part is
drawn:

- artists: each synthetic artist copies one demo artist, chosen at random, as its template,
  so the number of tracks per artist follows the demo's (most artists have one or two tracks,
  a few have over a hundred) and an artist keeps its genre and subgenre mix;
- tracks: one per track of the template artist, taking that track's genre, subgenre, release
  date and its nine audio features with small noise (a resampling of the real joint
  distribution of the nine features, conditioned on the subgenre and the artist); a track whose
  template has no features has none (10% in the demo), popularity is the template's +- noise;
- names: titles, artists and albums are made of words drawn by their frequency in the demo's
  titles, artists and albums (with as many words as the template's); artist names are unique;
- users: a library size drawn from the demo playlists' sizes; the library draws its
  subgenres from a demo playlist's subgenre mix and, within a subgenre, tracks weighted by
  popularity + 1;
- interactions (plays, likes, skips), which the demo does not have: 80% on the user's library
  and 20% on other tracks of the same subgenres; plays log-normal with Last.fm's spread (the
  standard deviation of log play counts in hetrec2011 user_artists is 1.53; its median of 260
  plays per artist is divided over ~20 tracks: median 13), likes 15%, dislikes 3%, skips
  Poisson with mean 0.3 (2 for a disliked track), last played within the two years before
  2026-01-01.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd

from musicspace_cli.generate.catalog import Catalog
from musicspace_cli.generate.demo import Demo
from musicspace_cli.generate.draws import Draws
from musicspace_cli.generate.users import (
    INTERACTION_COLUMNS,
    PLAYLIST_COLUMNS,
    TrackPicker,
    Users,
    library_sizes,
)
from musicspace_shared.catalog import CATALOG_COLUMNS

__all__ = ["GENERATOR_VERSION", "Chunks", "Demo", "Sizes", "generate"]

# Which generator made a data set: a cache of generated files (bench/bench_scale.py) keys on it,
# so a change of what a seed draws does not reuse files an older generator wrote.
# 2: streamed, every draw addressed by (stream, counter) (session 11).
GENERATOR_VERSION = 2


@dataclass(frozen=True)
class Sizes:
    tracks: int
    users: int
    interactions: int
    seed: int = 0


@dataclass(frozen=True)
class Chunks:
    """Tracks, and users, made and written at a time: they set the memory, never the output.
    A chunk's rows take about 1 KB each while it is formatted; users=None: enough users for
    about `rows` library and interaction rows."""

    tracks: int = 20_000
    users: int | None = None
    rows: int = 100_000

    def users_for(self, sizes: Sizes, library_mean: float) -> int:
        if self.users is not None:
            return self.users
        per_user = library_mean + sizes.interactions / max(sizes.users, 1)
        return max(1, int(self.rows / per_user))


class _CsvGz:
    """A gzipped CSV file written a frame at a time; mtime 0, so the same rows give the same
    bytes (gzip otherwise stamps the time)."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self._file = gzip.GzipFile(path, "wb", compresslevel=6, mtime=0)
        self._file.write((",".join(columns) + "\n").encode())
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        text = frame.to_csv(index=False, header=False, na_rep="", lineterminator="\n")
        self._file.write(text.encode())
        self.rows += len(frame)

    def __enter__(self) -> _CsvGz:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._file.close()


def generate(
    out: Path, sizes: Sizes, demo: Demo | None = None, chunks: Chunks = Chunks()
) -> dict[str, Any]:
    """Write catalog.csv.gz, playlists.csv.gz and interactions.csv.gz to `out`; a summary."""
    if sizes.tracks < 1 or sizes.users < 0 or sizes.interactions < 0:
        raise ValueError("tracks must be at least 1; users and interactions not negative")
    if chunks.tracks < 1 or (chunks.users or 1) < 1 or chunks.rows < 1:
        raise ValueError("chunks must hold at least one track, one user and one row")
    started = time.perf_counter()
    demo = demo or Demo()
    draws = Draws(sizes.seed)
    out.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(demo, draws, sizes.tracks)
    with _CsvGz(out / "catalog.csv.gz", CATALOG_COLUMNS) as catalog_file:
        for frame in catalog.chunks(chunks.tracks):
            catalog_file.write(frame)
    picker = TrackPicker(catalog.subgenre_codes, catalog.popularity, len(demo.subgenre_names))
    del catalog.popularity
    per_chunk = chunks.users_for(sizes, float(demo.playlist_sizes.mean()))
    firsts = range(0, sizes.users, per_chunk)
    drawn = sum(
        int(library_sizes(demo, draws, np.arange(f, min(f + per_chunk, sizes.users))).sum())
        for f in firsts
    )
    users = Users(demo, draws, picker, sizes.interactions, drawn)
    with (
        _CsvGz(out / "playlists.csv.gz", PLAYLIST_COLUMNS) as playlists,
        _CsvGz(out / "interactions.csv.gz", INTERACTION_COLUMNS) as interactions,
    ):
        for first in firsts:
            chunk = users.chunk(first, min(per_chunk, sizes.users - first))
            playlists.write(chunk.playlists)
            interactions.write(chunk.interactions)
    return {
        "out": str(out),
        "seed": sizes.seed,
        "rows": {
            "catalog": catalog_file.rows,
            "playlists": playlists.rows,
            "interactions": interactions.rows,
        },
        "artists": catalog.artists,
        "without_features": catalog.without_features / sizes.tracks,
        "seconds": round(time.perf_counter() - started, 1),
    }
