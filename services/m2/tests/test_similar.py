"""GET /api/m2/similar/{track_id}."""

from __future__ import annotations

import httpx

from tests.factories import create_track

from .helpers import db_session, unique_text


async def test_similar_excludes_the_track_and_its_duplicates(
    client: httpx.AsyncClient, m2_db_url: str
) -> None:
    title, artist = unique_text("Midnight Echo"), unique_text("The Testers")
    async with db_session(m2_db_url) as session:
        original = await create_track(session, title=title, artist=artist, album="First")
        duplicate = await create_track(session, title=title.upper(), artist=artist, album="Best Of")
        sibling = await create_track(
            session, title=unique_text("Other Song"), artist=artist, album="First"
        )
    response = await client.get(f"/api/m2/similar/{original.track_id}", params={"limit": 10})
    assert response.status_code == 200, response.text
    body = response.json()
    ids = [item["track_id"] for item in body["items"]]
    assert len(ids) == 10
    assert original.track_id not in ids and duplicate.track_id not in ids
    # The same artist's other track is the nearest neighbour once the duplicates are gone.
    assert ids[0] == sibling.track_id
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True)
    # A 0..1 similarity (it once reached 2.24 for a score documented as a cosine).
    assert all(0 <= score <= 1 for score in scores) and scores[0] > 0.5


async def test_similar_returns_distinct_recordings(
    client: httpx.AsyncClient, m2_db_url: str
) -> None:
    title, artist = unique_text("Twin"), unique_text("Copycats")
    async with db_session(m2_db_url) as session:
        seed = await create_track(session, title=unique_text("Seed"), artist=artist)
        await create_track(session, title=title, artist=artist)
        await create_track(session, title=title, artist=artist)
    response = await client.get(f"/api/m2/similar/{seed.track_id}", params={"limit": 5})
    titles = [item["title"] for item in response.json()["items"]]
    assert titles.count(title) == 1


async def test_similar_unknown_track_returns_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/m2/similar/noSuchTrack0000")
    assert response.status_code == 404
    assert response.json()["title"] == "Not found"


async def test_similar_limit_out_of_bounds_returns_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/m2/similar/anything", params={"limit": 0})
    assert response.status_code == 422
