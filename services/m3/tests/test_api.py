"""Recommend and events through the app: exclusions, per-artist cap, drivers, 404s and 422s."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.recommend_contract import check_recommend_contract

from .helpers import event, users_with_tracks


@pytest.fixture(scope="module")
async def demo_users(m3_db_url: str) -> list[tuple[int, list[str]]]:
    return await users_with_tracks(m3_db_url)


async def test_readyz_reports_model_loaded(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["model"] == "ok"


async def test_recommend_returns_ranked_unowned_tracks_with_drivers(
    client: httpx.AsyncClient, demo_users
) -> None:
    user_id, owned = demo_users[0]
    response = await client.post("/api/m3/recommend", json={"user_id": user_id, "limit": 15})
    assert response.status_code == 200
    body = response.json()
    assert (
        body["user_id"] == user_id and body["model"] in ("global", "personal") and body["version"]
    )
    items = body["items"]
    assert len(items) == 15
    assert not {i["track_id"] for i in items} & set(owned)
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)
    assert any(i["drivers"] for i in items[:3])


async def test_recommend_caps_tracks_per_artist(client: httpx.AsyncClient, demo_users) -> None:
    for user_id, _ in demo_users[:5]:
        items = (
            await client.post(
                "/api/m3/recommend", json={"user_id": user_id, "limit": 30, "max_per_artist": 1}
            )
        ).json()["items"]
        artists = [i["artist"] for i in items]
        assert len(artists) == len(set(artists))
        items = (
            await client.post(
                "/api/m3/recommend", json={"user_id": user_id, "limit": 30, "max_per_artist": 2}
            )
        ).json()["items"]
        artists = [i["artist"] for i in items]
        assert max(artists.count(a) for a in artists) <= 2


async def test_recommend_excludes_disliked_tracks(
    client: httpx.AsyncClient, app, demo_users
) -> None:
    user_id, _ = demo_users[1]
    first = (await client.post("/api/m3/recommend", json={"user_id": user_id, "limit": 10})).json()[
        "items"
    ]
    disliked = first[0]["track_id"]
    response = await client.post(
        "/api/m3/events", json={"events": [event(user_id, disliked, "dislike")]}
    )
    assert response.json()["recorded"] == 1
    again = (await client.post("/api/m3/recommend", json={"user_id": user_id, "limit": 50})).json()[
        "items"
    ]
    assert disliked not in {i["track_id"] for i in again}


async def test_recommend_concurrent_answers_equal_serial_ones(
    client: httpx.AsyncClient, demo_users
) -> None:
    requests = [{"user_id": uid, "limit": 20} for uid, _ in demo_users[5:21]]
    serial = [(await client.post("/api/m3/recommend", json=r)).json()["items"] for r in requests]
    concurrent = await asyncio.gather(
        *(client.post("/api/m3/recommend", json=r) for r in requests * 2)
    )
    for i, response in enumerate(concurrent):
        assert response.status_code == 200
        assert response.json()["items"] == serial[i % len(requests)]


async def test_recommend_unknown_user_returns_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/m3/recommend", json={"user_id": 987654321, "limit": 5})
    assert response.status_code == 404
    assert "987654321" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": 0},
        {"user_id": 1, "limit": 0},
        {"user_id": 1, "limit": 1000},
        {"user_id": 1, "max_per_artist": 0},
        {"limit": 5},
    ],
)
async def test_recommend_invalid_input_returns_422(client: httpx.AsyncClient, body) -> None:
    response = await client.post("/api/m3/recommend", json=body)
    assert response.status_code == 422
    assert response.json()["detail"]


async def test_events_same_event_twice_is_counted_once(
    client: httpx.AsyncClient, demo_users
) -> None:
    user_id, owned = demo_users[2]
    batch = {
        "events": [
            event(user_id, owned[0], "play", "evt-twice-1"),
            event(user_id, owned[0], "skip", "evt-twice-2"),
        ]
    }
    first = (await client.post("/api/m3/events", json=batch)).json()
    second = (await client.post("/api/m3/events", json=batch)).json()
    assert (first["recorded"], first["duplicates"]) == (2, 0)
    assert (second["recorded"], second["duplicates"]) == (0, 2)
    assert [r["status"] for r in second["results"]] == ["duplicate", "duplicate"]


async def test_events_unknown_user_and_track_are_reported_per_event(
    client: httpx.AsyncClient, demo_users
) -> None:
    user_id, owned = demo_users[3]
    batch = {
        "events": [
            event(user_id, owned[0], "like"),
            event(987654321, owned[0], "play"),
            event(user_id, "noSuchTrack123", "play"),
        ]
    }
    body = (await client.post("/api/m3/events", json=batch)).json()
    assert [r["status"] for r in body["results"]] == ["recorded", "unknown_user", "unknown_track"]
    assert (body["recorded"], body["rejected"]) == (1, 2)


@pytest.mark.parametrize(
    "events",
    [
        [],
        [{"event_id": "x", "user_id": 1, "track_id": "t", "kind": "love"}],
        [{"event_id": "bad id!", "user_id": 1, "track_id": "t", "kind": "play"}],
    ],
)
async def test_events_malformed_batch_returns_422(client: httpx.AsyncClient, events) -> None:
    response = await client.post("/api/m3/events", json={"events": events})
    assert response.status_code == 422


async def test_events_batch_over_1000_returns_422(client: httpx.AsyncClient) -> None:
    events = [
        {"event_id": f"e{i}", "user_id": 1, "track_id": "t", "kind": "play"} for i in range(1001)
    ]
    response = await client.post("/api/m3/events", json={"events": events})
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("occurred_at", "message"),
    [
        ("0001-01-01T00:00:00Z", "on or after 2000-01-01"),
        ("1999-12-31T23:59:59Z", "on or after 2000-01-01"),
        ("9999-12-31T23:59:59Z", "5 minutes ahead"),
        (None, "5 minutes ahead"),  # an hour from now, below
    ],
)
async def test_events_occurred_at_out_of_range_returns_422_and_stores_nothing(
    client: httpx.AsyncClient, demo_users, occurred_at, message
) -> None:
    user_id, owned = demo_users[4]
    when = occurred_at or (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    bad = event(user_id, owned[1], "play", f"evt-when-{uuid.uuid4().hex[:8]}") | {
        "occurred_at": when
    }
    good = event(user_id, owned[1], "play", f"evt-when-{uuid.uuid4().hex[:8]}")
    response = await client.post("/api/m3/events", json={"events": [good, bad]})
    assert response.status_code == 422
    assert message in str(response.json()["detail"])
    retry = (await client.post("/api/m3/events", json={"events": [good]})).json()
    assert retry["recorded"] == 1  # the rejected batch stored nothing


async def test_recommend_follows_the_common_contract(
    client: httpx.AsyncClient, demo_users, m3_db_url: str
) -> None:
    """Every field of the shared request (filters, exclude, exclude_owned, max_per_artist,
    cursor) and of the shared answer (recommendation_id, next_cursor, scores in 0..1)."""
    user_id, _ = demo_users[3]
    await check_recommend_contract(
        client, "/api/m3/recommend", {"user_id": user_id}, db_url=m3_db_url, source="m3"
    )


async def test_recommend_pages_and_filters_are_cached_apart(
    client: httpx.AsyncClient, demo_users
) -> None:
    """The cached ranked list serves each page and each filter; none answers for another."""
    user_id, _ = demo_users[4]
    body = {"user_id": user_id, "limit": 5}
    first = (await client.post("/api/m3/recommend", json=body)).json()
    rock = (
        await client.post("/api/m3/recommend", json=body | {"filters": {"genre": "rock"}})
    ).json()
    second = (
        await client.post("/api/m3/recommend", json=body | {"cursor": first["next_cursor"]})
    ).json()
    again = (await client.post("/api/m3/recommend", json=body)).json()
    ids = lambda page: [i["track_id"] for i in page["items"]]  # noqa: E731
    assert ids(again) == ids(first) and again["recommendation_id"] != first["recommendation_id"]
    assert not set(ids(first)) & set(ids(second))
    mixed = await client.post("/api/m3/recommend", json=body | {"cursor": rock["next_cursor"]})
    assert mixed.status_code == 422 and "another request" in mixed.json()["detail"]
