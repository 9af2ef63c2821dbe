"""Migrations on both engines keep the data they reshape."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from musicspace_shared.db.engine import make_engine
from musicspace_shared.db.migrate import upgrade_async
from tests.databases import new_mariadb_database


@pytest.fixture(params=["mariadb", "sqlite"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'migrate.db'}"
    return new_mariadb_database("msmigrate")


EVENT = (
    "INSERT INTO interaction_event (event_id, user_id, track_id, kind, occurred_at, received_at) "
    "VALUES (:e, :u, 't1', 'play', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
)


async def _execute(url: str, sql: str, **params: object) -> list[tuple]:
    engine = make_engine(url=url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(sa.text(sql), params)
            return [tuple(r) for r in result.all()] if result.returns_rows else []
    finally:
        await engine.dispose()


async def test_event_ids_become_unique_per_user_and_stored_events_are_kept(
    empty_db_url: str,
) -> None:
    await upgrade_async(empty_db_url, "0002")
    await _execute(empty_db_url, EVENT, e="e1", u=1)
    await _execute(empty_db_url, EVENT, e="e2", u=1)
    with pytest.raises(sa.exc.IntegrityError):  # the old key: one user per event id
        await _execute(empty_db_url, EVENT, e="e1", u=2)
    await upgrade_async(empty_db_url)
    await _execute(empty_db_url, EVENT, e="e1", u=2)
    with pytest.raises(sa.exc.IntegrityError):  # still once per user
        await _execute(empty_db_url, EVENT, e="e1", u=1)
    rows = await _execute(
        empty_db_url,
        "SELECT user_id, event_id, kind FROM interaction_event ORDER BY user_id, event_id",
    )
    assert rows == [(1, "e1", "play"), (1, "e2", "play"), (2, "e1", "play")]


async def test_events_gain_a_recommendation_id_and_stored_events_are_kept(
    empty_db_url: str,
) -> None:
    await upgrade_async(empty_db_url, "0004")
    await _execute(empty_db_url, EVENT, e="e1", u=1)
    await upgrade_async(empty_db_url)
    await _execute(
        empty_db_url,
        "INSERT INTO interaction_event (event_id, user_id, track_id, kind, occurred_at, "
        "received_at, recommendation_id, source, arm) VALUES ('e2', 1, 't1', 'click', "
        "'2026-01-02 00:00:00', '2026-01-02 00:00:00', 'blend.m3.0123456789abcdef', 'blend', 'm3')",
    )
    rows = await _execute(
        empty_db_url,
        "SELECT event_id, kind, recommendation_id, source, arm FROM interaction_event "
        "ORDER BY event_id",
    )
    assert rows == [
        ("e1", "play", None, None, None),
        ("e2", "click", "blend.m3.0123456789abcdef", "blend", "m3"),
    ]


async def test_activity_times_gain_microseconds_and_stored_rows_are_kept(
    empty_db_url: str,
) -> None:
    await upgrade_async(empty_db_url, "0005")
    stamp = "2026-01-01 00:00:00"
    await _execute(
        empty_db_url,
        "INSERT INTO user (id, created_at, updated_at) VALUES (1, :t, :t)",
        t=stamp,
    )
    await upgrade_async(empty_db_url)
    precise = "2026-01-02 03:04:05.123456"
    await _execute(empty_db_url, "UPDATE user SET updated_at = :t WHERE id = 1", t=precise)
    rows = await _execute(empty_db_url, "SELECT id, created_at, updated_at FROM user")
    assert [(r[0], str(r[2])[:26]) for r in rows] == [(1, precise)]
    assert str(rows[0][1]).startswith(stamp)
