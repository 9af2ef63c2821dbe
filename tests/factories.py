"""Test data: factories for single rows and a deterministic slice of the demo data."""

from __future__ import annotations

import csv
import gzip
import random
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from musicspace_cli.demo_data import DEMO_CATALOG, DEMO_PLAYLISTS
from musicspace_shared.db.tables import Interaction, Track, User, UserTrack
from musicspace_shared.features import FEATURES

SUBSET_PLAYLISTS = 40
SUBSET_EXTRA_TRACKS = 1500


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _write(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


def write_demo_subset(
    folder: Path,
    *,
    playlists: int = SUBSET_PLAYLISTS,
    extra_tracks: int = SUBSET_EXTRA_TRACKS,
    seed: int = 11,
) -> tuple[Path, Path]:
    """The first `playlists` playlists with >= 10 tracks, their tracks and `extra_tracks` others."""
    rng = random.Random(seed)
    p_header, p_rows = _read(DEMO_PLAYLISTS)
    c_header, c_rows = _read(DEMO_CATALOG)
    by_playlist: dict[str, list[dict[str, str]]] = {}
    for row in p_rows:
        by_playlist.setdefault(row["playlist_id"], []).append(row)
    chosen = [pid for pid, rows in by_playlist.items() if len(rows) >= 10]
    rng.shuffle(chosen)
    kept = [row for pid in sorted(chosen[:playlists]) for row in by_playlist[pid]]
    wanted = {row["track_id"] for row in kept}
    others = [row for row in c_rows if row["track_id"] not in wanted]
    wanted |= {row["track_id"] for row in rng.sample(others, extra_tracks)}
    catalog = folder / "catalog.csv.gz"
    playlists_file = folder / "playlists.csv.gz"
    _write(catalog, c_header, [row for row in c_rows if row["track_id"] in wanted])
    _write(playlists_file, p_header, kept)
    return catalog, playlists_file


def features(**overrides: float) -> dict[str, float]:
    base = dict(zip(FEATURES, (0.6, 0.7, 0.5, 0.1, 0.0, 0.15, 0.05, 120.0, -6.0), strict=True))
    return base | overrides


async def create_track(session: AsyncSession, **overrides: Any) -> Track:
    values: dict[str, Any] = {
        "track_id": "t" + uuid.uuid4().hex[:20],
        "title": "Song",
        "artist": "Artist",
        "album": "Album",
        "popularity": 50,
        "genre": "pop",
        "subgenre": "dance pop",
        **features(),
        "features_source": "measured",
    } | overrides
    track = Track(**values)
    session.add(track)
    await session.commit()
    return track


async def create_user(session: AsyncSession, *, tracks: list[str] = (), **overrides: Any) -> User:  # type: ignore[assignment]
    user = User(**({"id": random.randint(10_000_000, 2**40)} | overrides))
    session.add(user)
    await session.flush()
    for track_id in tracks:
        session.add(UserTrack(user_id=user.id, track_id=track_id))
    await session.commit()
    return user


async def create_interaction(session: AsyncSession, **values: Any) -> Interaction:
    interaction = Interaction(**values)
    session.add(interaction)
    await session.commit()
    return interaction
