"""The importer: bulk, idempotent, bad rows reported by line, all-or-nothing."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest
import sqlalchemy as sa

from musicspace_cli.importer import ImportRejected, import_catalog, import_playlists
from musicspace_shared.db.tables import Track, User, UserTrack
from musicspace_shared.features import FEATURES

HEADER = [
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
]
GOOD_FEATURES = ["0.5", "0.6", "0.4", "0.1", "0.0", "0.1", "0.05", "120.0", "-5.0"]


def write_catalog(path: Path, rows: list[list[str]]) -> Path:
    with gzip.open(path, "wt", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def row(
    track_id: str, *, title: str = "Song", features: list[str] | None = None, popularity: str = "50"
) -> list[str]:
    return [
        track_id,
        title,
        "Artist",
        popularity,
        "alb1",
        "Album",
        "2019-01-01",
        "pop",
        "dance pop",
        *(GOOD_FEATURES if features is None else features),
    ]


async def count(engine, table) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()


async def test_import_catalog_twice_changes_nothing_the_second_time(engine, tmp_path) -> None:
    prefix = tmp_path.name[-6:]
    path = write_catalog(
        tmp_path / "c.csv.gz", [row(f"{prefix}a"), row(f"{prefix}b", features=[""] * 9)]
    )
    first = await import_catalog(engine, path)
    second = await import_catalog(engine, path)
    assert (first.inserted, first.updated) == (2, 0)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 2)
    async with engine.connect() as conn:
        sources = dict(
            (
                await conn.execute(
                    sa.select(Track.track_id, Track.features_source).where(
                        Track.track_id.like(f"{prefix}%")
                    )
                )
            ).all()
        )
    assert sources == {f"{prefix}a": "measured", f"{prefix}b": None}


async def test_import_catalog_updates_changed_rows_only(engine, tmp_path) -> None:
    prefix = tmp_path.name[-6:]
    await import_catalog(
        engine, write_catalog(tmp_path / "1.csv.gz", [row(f"{prefix}a"), row(f"{prefix}b")])
    )
    report = await import_catalog(
        engine,
        write_catalog(tmp_path / "2.csv.gz", [row(f"{prefix}a", title="New"), row(f"{prefix}b")]),
    )
    assert (report.updated, report.unchanged) == (1, 1)
    async with engine.connect() as conn:
        title = (
            await conn.execute(sa.select(Track.title).where(Track.track_id == f"{prefix}a"))
        ).scalar_one()
    assert title == "New"


async def test_blank_features_never_clear_predicted_ones(engine, tmp_path) -> None:
    prefix = tmp_path.name[-6:]
    path = write_catalog(tmp_path / "c.csv.gz", [row(f"{prefix}p", features=[""] * 9)])
    await import_catalog(engine, path)
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(Track)
            .where(Track.track_id == f"{prefix}p")
            .values(energy=0.9, features_source="predicted")
        )
    await import_catalog(engine, path)
    async with engine.connect() as conn:
        energy, source = (
            await conn.execute(
                sa.select(Track.energy, Track.features_source).where(Track.track_id == f"{prefix}p")
            )
        ).one()
    assert (energy, source) == (0.9, "predicted")


async def test_bad_rows_reject_the_file_and_write_nothing(engine, tmp_path) -> None:
    prefix = tmp_path.name[-6:]
    before = await count(engine, Track)
    bad_features = GOOD_FEATURES[:-1] + ["9000"]
    path = write_catalog(
        tmp_path / "c.csv.gz",
        [
            row(f"{prefix}ok"),
            row("bad id!"),
            row(f"{prefix}x", features=bad_features),
            row(f"{prefix}y", popularity="abc"),
        ],
    )
    with pytest.raises(ImportRejected) as excinfo:
        await import_catalog(engine, path, on_error="reject")
    assert [line for line, _ in excinfo.value.errors] == [3, 4, 5]
    assert "loudness" in excinfo.value.errors[1][1]
    assert await count(engine, Track) == before


async def test_bad_rows_skipped_on_request_are_reported_with_lines(engine, tmp_path) -> None:
    prefix = tmp_path.name[-6:]
    partial = GOOD_FEATURES[:3] + [""] * 6
    path = write_catalog(
        tmp_path / "c.csv.gz", [row(f"{prefix}ok"), row(f"{prefix}half", features=partial)]
    )
    report = await import_catalog(engine, path, on_error="skip")
    assert report.inserted == 1
    assert report.skipped[0][0] == 3 and "incomplete audio features" in report.skipped[0][1]


async def test_failed_write_leaves_no_half_import(engine, tmp_path, monkeypatch) -> None:
    prefix = tmp_path.name[-6:]
    import musicspace_cli.importer as importer

    original = importer.upsert_tracks

    async def written_then_failing(conn, rows, **kwargs):
        await original(conn, rows, **kwargs)  # the rows are in the transaction...
        raise RuntimeError("disk full")  # ...which then fails

    monkeypatch.setattr(importer, "upsert_tracks", written_then_failing)
    before = await count(engine, Track)
    path = write_catalog(tmp_path / "c.csv.gz", [row(f"{prefix}{i}") for i in range(6)])
    with pytest.raises(RuntimeError):
        await import_catalog(engine, path)
    assert await count(engine, Track) == before


async def test_playlists_become_users_with_pms_tracks_idempotently(engine, tmp_path) -> None:
    prefix = tmp_path.name[-6:]
    await import_catalog(
        engine, write_catalog(tmp_path / "c.csv.gz", [row(f"{prefix}{i}") for i in range(3)])
    )
    playlists = tmp_path / "p.csv"
    playlists.write_text(
        "playlist_id,playlist_name,playlist_genre,playlist_subgenre,track_id\n"
        f"pl{prefix}A,Mix A,pop,dance pop,{prefix}0\npl{prefix}A,Mix A,pop,dance pop,{prefix}1\n"
        f"pl{prefix}B,Mix B,pop,dance pop,{prefix}2\n"
    )
    first = await import_playlists(engine, playlists)
    second = await import_playlists(engine, playlists)
    assert (first.users_created, first.inserted) == (2, 3)
    assert (second.users_created, second.inserted) == (0, 0)
    async with engine.connect() as conn:
        owner = (
            await conn.execute(sa.select(User.id).where(User.external_ref == f"pl{prefix}A"))
        ).scalar_one()
        owned = set(
            (
                await conn.execute(sa.select(UserTrack.track_id).where(UserTrack.user_id == owner))
            ).scalars()
        )
    assert owned == {f"{prefix}0", f"{prefix}1"}


async def test_playlist_with_unknown_track_is_rejected_whole(engine, tmp_path) -> None:
    prefix = tmp_path.name[-6:]
    users_before = await count(engine, User)
    playlists = tmp_path / "p.csv"
    playlists.write_text(f"playlist_id,playlist_name,track_id\npl{prefix}Z,Z,nosuchtrack{prefix}\n")
    with pytest.raises(ImportRejected) as excinfo:
        await import_playlists(engine, playlists)
    assert excinfo.value.errors[0][0] == 2
    assert await count(engine, User) == users_before


async def test_missing_column_is_rejected(engine, tmp_path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("id,name\n1,x\n")
    with pytest.raises(ImportRejected) as excinfo:
        await import_catalog(engine, path)
    assert "missing column" in excinfo.value.errors[0][1]
