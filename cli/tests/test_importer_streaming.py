"""The importer streams: memory bounded by the chunk, not the file; its guarantees hold across
chunks (one transaction: a bad row or a failure in a late chunk writes nothing; idempotent;
the last of a repeated row wins), on MariaDB and SQLite."""

from __future__ import annotations

import csv
import gzip
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

import musicspace_cli.importer as importer
from musicspace_cli.generate import Sizes, generate
from musicspace_cli.importer import (
    ImportRejected,
    import_catalog,
    import_interactions,
    import_playlists,
)
from musicspace_shared.db.engine import make_engine
from musicspace_shared.db.migrate import upgrade
from musicspace_shared.db.tables import Interaction, Track, User, UserTrack
from tests.databases import new_mariadb_database

CHUNK = 300
SIZES = Sizes(tracks=6000, users=150, interactions=24000, seed=18)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("streamed")
    generate(out, SIZES)
    return out


@pytest.fixture(params=["mariadb", "sqlite"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty migrated database of its own (the generated users' refs are not unique to
    this module, so the shared test database would mix them)."""
    if request.param == "mariadb":
        url = new_mariadb_database("msstream")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'stream.db'}"
    upgrade(url)
    return url


@pytest.fixture
async def fresh(fresh_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(url=fresh_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importer, "ROWS_PER_CHUNK", CHUNK)


async def count(engine: AsyncEngine, table: type) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()


async def _peak_mb(coroutine) -> float:  # type: ignore[no-untyped-def]
    tracemalloc.start()
    try:
        await coroutine
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


async def test_memory_is_bounded_by_the_chunk_not_the_file(
    fresh: AsyncEngine, generated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each file is 20-80 chunks long; the old importer held every parsed row (the
    interactions alone: ~24k tuples and dicts, over 15 MB traced). Each import's peak stays
    near one chunk's worth whatever the file's length."""
    monkeypatch.setattr(importer, "ROWS_PER_CHUNK", CHUNK)
    peaks = {
        "catalog": await _peak_mb(import_catalog(fresh, generated / "catalog.csv.gz")),
        "playlists": await _peak_mb(import_playlists(fresh, generated / "playlists.csv.gz")),
        "interactions": await _peak_mb(
            import_interactions(fresh, generated / "interactions.csv.gz")
        ),
    }
    rows = {
        kind: len(pd.read_csv(generated / f"{kind}.csv.gz", usecols=["track_id"])) for kind in peaks
    }
    assert min(rows.values()) >= 20 * CHUNK
    assert await count(fresh, Interaction) == rows["interactions"]
    assert all(peak < 4.0 for peak in peaks.values()), peaks


async def test_whole_file_in_one_chunk_costs_more_than_the_bound(
    fresh: AsyncEngine, generated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bound above can fail: the same file read as one chunk (as the old importer held
    it) peaks far above it."""
    await import_catalog(fresh, generated / "catalog.csv.gz")
    await import_playlists(fresh, generated / "playlists.csv.gz")
    monkeypatch.setattr(importer, "ROWS_PER_CHUNK", 10**9)
    peak = await _peak_mb(import_interactions(fresh, generated / "interactions.csv.gz"))
    assert peak > 12.0


async def test_all_three_files_twice_change_nothing_the_second_time(
    fresh: AsyncEngine, generated: Path, small_chunks: None
) -> None:
    first = [
        await import_catalog(fresh, generated / "catalog.csv.gz"),
        await import_playlists(fresh, generated / "playlists.csv.gz"),
        await import_interactions(fresh, generated / "interactions.csv.gz"),
    ]
    again = [
        await import_catalog(fresh, generated / "catalog.csv.gz"),
        await import_playlists(fresh, generated / "playlists.csv.gz"),
        await import_interactions(fresh, generated / "interactions.csv.gz"),
    ]
    assert first[1].users_created == SIZES.users
    for before, after in zip(first, again, strict=True):
        assert (after.inserted, after.updated, after.users_created) == (0, 0, 0)
        assert after.unchanged == before.inserted + before.unchanged
    assert await count(fresh, User) == SIZES.users
    assert await count(fresh, UserTrack) == first[1].inserted


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with gzip.open(path, "wt", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with gzip.open(path, "rt", newline="") as handle:
        reader = csv.reader(handle)
        return next(reader), list(reader)


async def test_a_bad_row_in_a_late_chunk_rejects_the_whole_file(
    fresh: AsyncEngine, generated: Path, small_chunks: None, tmp_path: Path
) -> None:
    header, rows = _rows(generated / "catalog.csv.gz")
    rows[-2][0] = "bad id!"  # many chunks were written before this one
    path = _write(tmp_path / "c.csv.gz", header, rows)
    with pytest.raises(ImportRejected) as excinfo:
        await import_catalog(fresh, path)
    assert [line for line, _ in excinfo.value.errors] == [len(rows)]  # header is line 1
    assert await count(fresh, Track) == 0


async def test_an_unknown_user_in_a_late_chunk_rejects_the_interactions(
    fresh: AsyncEngine, generated: Path, small_chunks: None, tmp_path: Path
) -> None:
    await import_catalog(fresh, generated / "catalog.csv.gz")
    await import_playlists(fresh, generated / "playlists.csv.gz")
    header, rows = _rows(generated / "interactions.csv.gz")
    rows[-1][0] = "nobody"
    path = _write(tmp_path / "i.csv.gz", header, rows)
    with pytest.raises(ImportRejected) as excinfo:
        await import_interactions(fresh, path)
    assert excinfo.value.errors == [(len(rows) + 1, "unknown user_ref 'nobody'")]
    assert await count(fresh, Interaction) == 0
    report = await import_interactions(fresh, path, on_error="skip")
    assert (report.inserted, report.skipped_total) == (len(rows) - 1, 1)


async def test_a_failure_in_a_late_chunk_leaves_no_half_import(
    fresh: AsyncEngine, generated: Path, small_chunks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    await import_catalog(fresh, generated / "catalog.csv.gz")
    await import_playlists(fresh, generated / "playlists.csv.gz")
    original, calls = importer._write_interactions, []

    async def failing_on_the_fifth(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("connection lost")
        await original(*args, **kwargs)

    monkeypatch.setattr(importer, "_write_interactions", failing_on_the_fifth)
    with pytest.raises(RuntimeError):
        await import_interactions(fresh, generated / "interactions.csv.gz")
    assert await count(fresh, Interaction) == 0


async def test_a_pair_repeated_in_a_later_chunk_ends_with_the_last_values(
    fresh: AsyncEngine, generated: Path, small_chunks: None, tmp_path: Path
) -> None:
    await import_catalog(fresh, generated / "catalog.csv.gz")
    await import_playlists(fresh, generated / "playlists.csv.gz")
    header, rows = _rows(generated / "interactions.csv.gz")
    repeat = list(rows[0])
    repeat[header.index("play_count")] = "4242"
    path = _write(tmp_path / "i.csv.gz", header, [*rows, repeat])
    await import_interactions(fresh, path)
    async with fresh.connect() as conn:
        plays = (
            await conn.execute(
                sa.select(Interaction.play_count).where(Interaction.track_id == rows[0][1])
            )
        ).scalars()
        assert 4242 in list(plays)
    assert await count(fresh, Interaction) == len(rows)


async def test_bad_rows_are_all_counted_and_the_first_ones_kept(
    fresh: AsyncEngine, generated: Path, small_chunks: None, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(importer, "MAX_REPORTED", 3)
    header, rows = _rows(generated / "catalog.csv.gz")
    for row in rows[:10]:
        row[0] = "bad id!"
    path = _write(tmp_path / "c.csv.gz", header, rows)
    with pytest.raises(ImportRejected) as excinfo:
        await import_catalog(fresh, path)
    assert ([line for line, _ in excinfo.value.errors], excinfo.value.total) == ([2, 3, 4], 10)
    report = await import_catalog(fresh, path, on_error="skip")
    assert (report.skipped_total, len(report.skipped), report.inserted) == (10, 3, len(rows) - 10)
