"""Event aggregation on both engines: idempotency, counts, like state, unknown ids."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from musicspace_m3.events import Event, check_occurred_at, record_events
from musicspace_shared.db.engine import make_sessionmaker
from musicspace_shared.db.tables import Interaction
from tests.factories import create_track, create_user


async def _interaction(session, user_id: int, track_id: str) -> Interaction:
    session.expire_all()
    return (
        await session.execute(
            sa.select(Interaction).where(
                Interaction.user_id == user_id, Interaction.track_id == track_id
            )
        )
    ).scalar_one()


async def test_events_aggregate_plays_skips_and_latest_like(session) -> None:
    track_id = (await create_track(session)).track_id
    user_id = (await create_user(session)).id
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    batch = [
        Event("a1", user_id, track_id, "play", t0),
        Event("a2", user_id, track_id, "play", t0 + timedelta(minutes=5)),
        Event("a3", user_id, track_id, "skip", t0),
        Event("a4", user_id, track_id, "like", t0),
        Event("a5", user_id, track_id, "dislike", t0 + timedelta(minutes=1)),
    ]
    batch = [
        Event(f"{e.event_id}-{user_id}", e.user_id, e.track_id, e.kind, e.occurred_at)
        for e in batch
    ]
    results = await record_events(session=session, events=batch)
    assert [r.status for r in results] == ["recorded"] * 5
    row = await _interaction(session, user_id, track_id)
    assert (row.play_count, row.skip_count, row.like_score) == (2, 1, -1)
    assert row.last_played_at is not None and row.last_played_at.replace(
        tzinfo=UTC
    ) == t0 + timedelta(minutes=5)
    await record_events(
        session=session,
        events=[
            Event(f"a6-{user_id}", user_id, track_id, "unlike", t0),
            Event(f"a7-{user_id}", user_id, track_id, "play", t0),
        ],
    )
    row = await _interaction(session, user_id, track_id)
    assert (row.play_count, row.skip_count, row.like_score) == (3, 1, 0)
    assert row.last_played_at.replace(tzinfo=UTC) == t0 + timedelta(minutes=5)


async def test_same_event_twice_is_counted_once(session) -> None:
    track_id = (await create_track(session)).track_id
    user_id = (await create_user(session)).id
    play = Event(f"p-{user_id}", user_id, track_id, "play")
    first = await record_events(session=session, events=[play, play])
    second = await record_events(session=session, events=[play])
    assert [r.status for r in first] == ["recorded", "duplicate"]
    assert [r.status for r in second] == ["duplicate"]
    assert (await _interaction(session, user_id, track_id)).play_count == 1


async def test_unknown_user_or_track_is_reported_and_not_stored(session) -> None:
    track_id = (await create_track(session)).track_id
    user_id = (await create_user(session)).id
    results = await record_events(
        session=session,
        events=[
            Event(f"u-{user_id}", 123456789012, track_id, "play"),
            Event(f"t-{user_id}", user_id, "missingTrack", "play"),
        ],
    )
    assert [r.status for r in results] == ["unknown_user", "unknown_track"]
    session.expire_all()
    count = (
        await session.execute(
            sa.select(sa.func.count())
            .select_from(Interaction)
            .where(Interaction.user_id == user_id)
        )
    ).scalar_one()
    assert count == 0


async def test_same_event_id_from_two_users_is_recorded_for_each(session) -> None:
    track_id = (await create_track(session)).track_id
    first = (await create_user(session)).id
    second = (await create_user(session)).id
    shared_id = f"shared-{first}"
    mine = await record_events(session=session, events=[Event(shared_id, first, track_id, "like")])
    theirs = await record_events(
        session=session, events=[Event(shared_id, second, track_id, "like")]
    )
    assert [r.status for r in mine + theirs] == ["recorded", "recorded"]
    assert (await _interaction(session, second, track_id)).like_score == 1
    again = await record_events(
        session=session, events=[Event(shared_id, second, track_id, "like")]
    )
    assert [r.status for r in again] == ["duplicate"]


async def test_concurrent_duplicate_batches_count_once(engine) -> None:
    async with make_sessionmaker(engine)() as session:
        track_id = (await create_track(session)).track_id
        user_id = (await create_user(session)).id
    batch = [Event(f"c{i}-{user_id}", user_id, track_id, "play") for i in range(20)]

    async def send() -> list[str]:
        async with make_sessionmaker(engine)() as session:
            return [r.status for r in await record_events(session=session, events=batch)]

    outcomes = await asyncio.gather(*(send() for _ in range(4)))
    assert sum(s.count("recorded") for s in outcomes) == 20
    async with make_sessionmaker(engine)() as session:
        assert (await _interaction(session, user_id, track_id)).play_count == 20


def test_occurred_at_bounds() -> None:
    now = datetime.now(UTC)
    assert check_occurred_at(None) is None
    assert check_occurred_at(datetime(2000, 1, 1)) == datetime(2000, 1, 1, tzinfo=UTC)
    assert check_occurred_at(now + timedelta(minutes=4)) is not None
    with pytest.raises(ValueError, match="on or after 2000-01-01"):
        check_occurred_at(datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC))
    with pytest.raises(ValueError, match="5 minutes ahead"):
        check_occurred_at(now + timedelta(minutes=6))
