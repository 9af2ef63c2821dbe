"""m3's activity fingerprint: a few index dives (no scan of interaction or user_track), and
still moved by every change its snapshot depends on, on MariaDB and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from musicspace_m3.repository import activity_fingerprint
from musicspace_shared.db.tables import Interaction, User, UserTrack
from musicspace_shared.ingest import put_library
from tests.factories import create_interaction, create_track, create_user


def _next_second() -> datetime:
    """100 ms into the next second: later than every row other tests wrote to the shared
    database (a fixed date could sit under their maximum, which the change would not move)."""
    return (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=100_000)


async def _fingerprint(session: AsyncSession) -> str:
    value = await activity_fingerprint(session)
    await session.commit()
    return value


async def test_two_interaction_updates_in_one_second_both_move_it(session: AsyncSession) -> None:
    """A like changes no count: only the time, to the microsecond, tells (whole seconds did not)."""
    same_second = _next_second()
    track = await create_track(session)
    user = await create_user(session, tracks=[track.track_id])
    await create_interaction(
        session, user_id=user.id, track_id=track.track_id, play_count=1, updated_at=same_second
    )
    before = await _fingerprint(session)
    await session.execute(
        sa.update(Interaction)
        .where(Interaction.user_id == user.id)
        .values(like_score=1, updated_at=same_second.replace(microsecond=200_000))
    )
    await session.commit()
    assert await _fingerprint(session) != before


async def test_library_and_user_changes_move_it_and_nothing_else_does(
    session: AsyncSession,
) -> None:
    tracks = [(await create_track(session)).track_id for _ in range(3)]
    user = await create_user(session, tracks=tracks)
    first = await _fingerprint(session)
    assert await _fingerprint(session) == first  # nothing changed
    # A replace that only removes leaves no added_at: the user's updated_at moves.
    conn = await session.connection()
    await put_library(conn, user.id, [{"track_id": t} for t in tracks[:2]], replace=True)
    await session.commit()
    removed = await _fingerprint(session)
    assert removed != first
    # A new PMS track moves it.
    session.add(UserTrack(user_id=user.id, track_id=tracks[2]))
    await session.commit()
    added = await _fingerprint(session)
    assert added != removed
    # An erased user (rows gone, no time left behind) moves it through the user count.
    await session.execute(sa.delete(UserTrack).where(UserTrack.user_id == user.id))
    await session.execute(sa.delete(User).where(User.id == user.id))
    await session.commit()
    assert await _fingerprint(session) not in (first, removed, added)


@pytest.mark.parametrize("any_db_url", ["mariadb"], indirect=True)
async def test_it_reads_no_whole_table(session: AsyncSession) -> None:
    """MariaDB's plan for each query: an index lookup of a maximum ("Select tables optimized
    away"), or the user table's primary key, never a scan of interaction or user_track."""
    for table, column in (("interaction", "updated_at"), ("user_track", "added_at")):
        plan = (await session.execute(sa.text(f"EXPLAIN SELECT max({column}) FROM {table}"))).all()
        assert "optimized away" in str(plan[0]), plan
