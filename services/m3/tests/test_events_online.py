"""Online measurement at the events route: recommendation ids, clicks and impressions, counters.

The domain part runs on both engines; the route part on this package's MariaDB app."""

from __future__ import annotations

import uuid

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client import generate_latest

from musicspace_m3.events import Event, record_events
from musicspace_shared.db.tables import Interaction, InteractionEvent
from musicspace_shared.recommendation_ids import new_id
from tests.factories import create_track, create_user

from .helpers import event, users_with_tracks


async def _stored(session, user_id: int) -> dict[str, tuple]:
    session.expire_all()
    rows = await session.execute(
        sa.select(
            InteractionEvent.event_id,
            InteractionEvent.kind,
            InteractionEvent.recommendation_id,
            InteractionEvent.source,
            InteractionEvent.arm,
        ).where(InteractionEvent.user_id == user_id)
    )
    return {r[0]: tuple(r[1:]) for r in rows}


async def test_events_keep_the_recommendation_id_its_source_and_arm(session) -> None:
    track_id = (await create_track(session)).track_id
    user_id = (await create_user(session)).id
    rid = new_id("blend", "m3")
    results = await record_events(
        session=session,
        events=[
            Event("i1", user_id, track_id, "impression", recommendation_id=rid),
            Event("c1", user_id, track_id, "click", recommendation_id=rid),
            Event("p1", user_id, track_id, "play", recommendation_id=rid),
            Event("p2", user_id, track_id, "play"),
        ],
    )
    assert [r.status for r in results] == ["recorded"] * 4
    assert await _stored(session, user_id) == {
        "i1": ("impression", rid, "blend", "m3"),
        "c1": ("click", rid, "blend", "m3"),
        "p1": ("play", rid, "blend", "m3"),
        "p2": ("play", None, None, None),
    }


async def test_clicks_and_impressions_change_no_interaction(session) -> None:
    track_id = (await create_track(session)).track_id
    other = (await create_track(session)).track_id
    user_id = (await create_user(session)).id
    rid = new_id("m1", "none")
    await record_events(
        session=session,
        events=[
            Event("i1", user_id, track_id, "impression", recommendation_id=rid),
            Event("i2", user_id, other, "impression", recommendation_id=rid),
            Event("c1", user_id, other, "click", recommendation_id=rid),
            Event("p1", user_id, other, "play", recommendation_id=rid),
        ],
    )
    session.expire_all()
    rows = (
        await session.execute(
            sa.select(Interaction.track_id, Interaction.play_count).where(
                Interaction.user_id == user_id
            )
        )
    ).all()
    assert [tuple(r) for r in rows] == [(other, 1)]  # the play only; shown-only tracks: none


@pytest.fixture(scope="module")
async def demo_users(m3_db_url: str) -> list[tuple[int, list[str]]]:
    return await users_with_tracks(m3_db_url)


def _feedback(app, source: str, arm: str, kind: str) -> float:
    value = app.state.metrics.registry.get_sample_value(
        "musicspace_feedback_events_total",
        {"service": "m3", "source": source, "arm": arm, "kind": kind},
    )
    return value or 0.0


async def test_route_records_clicks_and_counts_feedback_once(
    app, client: httpx.AsyncClient, demo_users
) -> None:
    user_id, owned = demo_users[5]
    rid = new_id("blend", "blend")
    before = _feedback(app, "blend", "blend", "click")
    click = event(user_id, owned[0], "click") | {"recommendation_id": rid}
    shown = event(user_id, owned[0], "impression") | {"recommendation_id": rid}
    for _ in range(2):  # the second time: duplicates, not counted again
        response = await client.post("/api/m3/events", json={"events": [shown, click]})
        assert response.status_code == 200, response.text
    assert _feedback(app, "blend", "blend", "click") == before + 1
    assert _feedback(app, "blend", "blend", "impression") >= 1
    assert b"musicspace_feedback_events_total" in generate_latest(app.state.metrics.registry)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"kind": "click"}, "needs the recommendation_id"),
        ({"kind": "impression"}, "needs the recommendation_id"),
        ({"kind": "play", "recommendation_id": "m3.none"}, "recommendation_id"),
        ({"kind": "play", "recommendation_id": "M3.none.0123456789abcdef"}, "recommendation_id"),
        ({"kind": "play", "recommendation_id": 7}, "recommendation_id"),
    ],
)
async def test_route_refuses_a_missing_or_malformed_recommendation_id(
    client: httpx.AsyncClient, demo_users, extra, message
) -> None:
    user_id, owned = demo_users[5]
    body = event(user_id, owned[0], "play", f"bad-{uuid.uuid4().hex[:8]}") | extra
    response = await client.post("/api/m3/events", json={"events": [body]})
    assert response.status_code == 422
    assert message in str(response.json())
