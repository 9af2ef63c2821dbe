"""`musicspace report online` on both engines: rates per source, route and arm, in a window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from musicspace_cli.report_online import counts, parse_time, report, route_of
from musicspace_m3.events import Event, record_events
from musicspace_shared.recommendation_ids import new_id
from tests.factories import create_track, create_user

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def test_report_gives_click_and_play_through_per_source_route_and_arm(
    engine, session
) -> None:
    tracks = [(await create_track(session)).track_id for _ in range(4)]
    user = (await create_user(session)).id
    blend = new_id("blend", "blend")  # /api/recommend, blend arm
    m3_arm = new_id("m3", "m3")  # /api/recommend, m3 arm
    direct = new_id("m1")  # /api/m1/recommend called directly (arm "none")
    events: list[Event] = []

    def add(kind: str, rid: str, track: str, minutes: int = 0) -> None:
        at = T0 + timedelta(minutes=minutes)
        events.append(Event(f"e{len(events)}", user, track, kind, at, rid))

    for track in tracks:  # four shown by each answer
        for rid in (blend, m3_arm, direct):
            add("impression", rid, track)
    add("click", blend, tracks[0])
    add("click", blend, tracks[1])
    add("play", blend, tracks[0])
    add("play", blend, tracks[0], minutes=3)  # a replay: the pair counts once
    add("click", m3_arm, tracks[2])
    add("play", direct, tracks[3])
    add("click", direct, tracks[3], minutes=60 * 24 * 30)  # outside the window
    events.append(Event("plain", user, tracks[0], "play", T0))  # names no answer
    await record_events(session=session, events=events)

    # The window holds only this test's events (the other tests' events are at other times).
    window = {"since": T0 - timedelta(hours=1), "until": T0 + timedelta(days=1)}
    assert sorted(await counts(engine, **window)) == sorted(
        [
            ("blend", "blend", "impression", 4),
            ("blend", "blend", "click", 2),
            ("blend", "blend", "play", 1),
            ("m3", "m3", "impression", 4),
            ("m3", "m3", "click", 1),
            ("m1", "none", "impression", 4),
            ("m1", "none", "play", 1),
        ]
    )
    result = await report(engine, **window)
    assert result["by_source"]["blend"] == {
        "impressions": 4,
        "clicks": 2,
        "plays": 1,
        "likes": 0,
        "skips": 0,
        "dislikes": 0,
        "click_through": 0.5,
        "play_through": 0.25,
    }
    assert {route: (r["clicks"], r["plays"]) for route, r in result["by_route"].items()} == {
        "/api/recommend": (3, 1),
        "/api/m1": (0, 1),
    }
    assert {arm: r["click_through"] for arm, r in result["by_arm"].items()} == {
        "blend": 0.5,
        "m3": 0.25,
        "none": 0.0,
    }
    assert result["by_arm_and_source"]["none/m1"]["play_through"] == 0.25
    empty = await report(engine, since=T0 - timedelta(days=2), until=T0 - timedelta(days=1))
    assert empty["by_source"] == {}


def test_time_arguments_and_routes() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_time("7d", now=now) == now - timedelta(days=7)
    assert parse_time("30m", now=now) == now - timedelta(minutes=30)
    assert parse_time("2026-11-01T00:00", now=now) == datetime(2026, 11, 1, tzinfo=UTC)
    for bad in ("7w", "yesterday", "-1d", "0d"):
        with pytest.raises(ValueError, match="duration"):
            parse_time(bad, now=now)
    assert route_of("m3", "m3") == "/api/recommend"
    assert route_of("m3", "none") == "/api/m3"
