"""The catalog watcher: one query, a rebuild only when the catalog moved, a failed round retried."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from musicspace_shared import catalog
from musicspace_shared.catalog import catalog_version
from musicspace_shared.db.engine import make_engine, make_sessionmaker
from musicspace_shared.db.tables import Track
from musicspace_shared.watch import MAX_DEFERRED_ROUNDS, CatalogWatcher
from tests.factories import create_track


async def test_rebuilds_only_when_the_catalog_moved(any_db_url: str) -> None:
    engine = make_engine(url=any_db_url)
    maker = make_sessionmaker(engine)
    built: list[object] = []

    async def rebuild(version: object) -> None:
        built.append(version)

    watcher = CatalogWatcher(name="demo", sessionmaker=maker, rebuild=rebuild, every_s=lambda: 0)
    try:
        assert await watcher.check() is True
        assert await watcher.check() is False and len(built) == 1
        async with maker() as session:
            await create_track(session, title="Watched")
            now = await catalog_version(session)
        watcher.start()  # the background round finds the change without being asked
        for _ in range(100):
            if len(built) == 2:
                break
            await asyncio.sleep(0.05)
        assert built[-1] == now and len(built) == 2
    finally:
        await watcher.stop()
        await engine.dispose()


async def test_a_failed_rebuild_is_retried_at_the_next_round(sqlite_url: str) -> None:
    engine = make_engine(url=sqlite_url)
    calls: list[int] = []

    async def flaky(_version: object) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("worker died")

    watcher = CatalogWatcher(
        name="demo", sessionmaker=make_sessionmaker(engine), rebuild=flaky, every_s=lambda: 0
    )
    watcher.start()
    try:
        for _ in range(100):
            if len(calls) >= 2:
                break
            await asyncio.sleep(0.05)
        assert len(calls) == 2 and watcher.seen is not None
    finally:
        await watcher.stop()
        await engine.dispose()


async def _reads_before_the_first_rebuild(sqlite_url: str, *, moving: bool) -> int:
    """The loop over a version that moves at every read (a catalog written in bulk) or moved
    once: how many version reads came before the first rebuild."""
    engine = make_engine(url=sqlite_url)
    reads: list[int] = []
    at_rebuild: list[int] = []

    async def version(_session: object) -> int:
        reads.append(1)
        return len(reads) if moving else 1

    async def rebuild(_version: object) -> None:
        at_rebuild.append(len(reads))

    watcher = CatalogWatcher(
        name="demo",
        sessionmaker=make_sessionmaker(engine),
        rebuild=rebuild,
        every_s=lambda: 0,
        version=version,
    )
    watcher.start()
    try:
        for _ in range(200):
            if at_rebuild:
                break
            await asyncio.sleep(0.02)
    finally:
        await watcher.stop()
        await engine.dispose()
    assert at_rebuild, "never rebuilt"
    return at_rebuild[0]


async def test_a_catalog_written_in_bulk_is_rebuilt_once_it_holds_still(sqlite_url: str) -> None:
    # Moved once: the first round reads it twice (moved, then the same) and rebuilds for the
    # second read, without reading it again.
    assert await _reads_before_the_first_rebuild(sqlite_url, moving=False) == 2
    # Moving at every read: each round defers (two reads), until MAX_DEFERRED_ROUNDS in a row;
    # the next round rebuilds all the same, for its second read.
    reads = await _reads_before_the_first_rebuild(sqlite_url, moving=True)
    assert reads == 2 * MAX_DEFERRED_ROUNDS + 2


async def test_a_round_over_an_unchanged_catalog_reads_its_version_once(sqlite_url: str) -> None:
    engine = make_engine(url=sqlite_url)
    periods: list[int] = []  # the loop asks for its period once a round, before it sleeps
    reads_at: list[int] = []  # at each version read, how many periods had been asked for
    built: list[object] = []

    async def version(_session: object) -> int:
        reads_at.append(len(periods))
        return 1

    async def rebuild(v: object) -> None:
        built.append(v)

    def every_s() -> float:
        periods.append(1)
        return 0

    watcher = CatalogWatcher(
        name="demo",
        sessionmaker=make_sessionmaker(engine),
        rebuild=rebuild,
        every_s=every_s,
        version=version,
    )
    watcher.follow(1)  # built for version 1: every round finds it unchanged; the first at once
    watcher.start()
    try:
        for _ in range(200):
            if len(reads_at) >= 5:
                break
            await asyncio.sleep(0.02)
    finally:
        await watcher.stop()
        await engine.dispose()
    assert built == [] and reads_at[:5] == [0, 1, 2, 3, 4]


async def test_the_track_count_is_read_only_when_the_latest_time_moved_or_is_old(
    any_db_url: str, monkeypatch
) -> None:
    """A quiet check is one index lookup; a write moves the version at once; a track deleted
    by hand (no time moves) shows within COUNT_MAX_AGE_S."""
    engine = make_engine(url=any_db_url)
    maker = make_sessionmaker(engine)
    counts: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
        if "count(" in statement.lower():
            counts.append(statement)

    sa.event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with maker() as session:
            await create_track(session, title="Kept")
            gone = await create_track(session, title="Deleted by hand")
            await create_track(session, title="Latest")
            first = await catalog_version(session)
            assert await catalog_version(session) == first and len(counts) == 1
            await create_track(session, title="Added")
            added = await catalog_version(session)
            assert added[0] == first[0] + 1 and len(counts) == 2
            await session.execute(sa.delete(Track).where(Track.track_id == gone.track_id))
            await session.commit()
            assert await catalog_version(session) == added and len(counts) == 2
            monkeypatch.setattr(catalog, "COUNT_MAX_AGE_S", 0.0)
            assert await catalog_version(session) == (added[0] - 1, added[1])
    finally:
        await engine.dispose()
