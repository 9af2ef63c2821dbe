"""The offline service for real: a Chroma index of the demo subset, search, recommend, sync."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlmodel import col

from musicspace_shared.db.tables import Interaction, Track, utcnow
from musicspace_shared.features import FEATURES
from tests.factories import create_track, create_user
from tests.recommend_contract import check_recommend_contract

from .helpers import ADMIN_KEY

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


async def test_readyz_reports_index_ready(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["index"] == "ok"


async def test_search_returns_tracks_of_the_named_subgenre_with_reasons(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/llm/search", json={"query": "hard rock with heavy guitar riffs", "limit": 5}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["provider"] == "offline" and len(body["items"]) == 5
    assert body["intent"]["subgenres"].get("hard rock") == 1.0
    for item in body["items"]:
        assert item["subgenre"] == "hard rock"
        assert "hard rock" in item["reason"]
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == 1.0 and all(0.0 <= score <= 1.0 for score in scores)


async def test_search_filters_by_release_years(app: FastAPI, client: httpx.AsyncClient) -> None:
    body = {"query": "rock", "limit": 20, "filters": {"min_year": 1990, "max_year": 1999}}
    response = await client.post("/api/llm/search", json=body)
    assert response.status_code == 200, response.text
    ids = [item["track_id"] for item in response.json()["items"]]
    async with app.state.sessionmaker() as session:
        dates = (
            await session.execute(sa.select(Track.release_date).where(col(Track.track_id).in_(ids)))
        ).scalars()
        years = [int(d[:4]) for d in dates]
    assert len(years) == len(ids) == 20 and all(1990 <= y <= 1999 for y in years)


async def test_korean_query_finds_the_same_subgenre(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/llm/search", json={"query": "새벽 드라이브에 어울리는 신스팝", "limit": 5}
    )
    assert response.status_code == 200
    assert {item["subgenre"] for item in response.json()["items"]} == {"electropop"}
    # 드라이브 (drive) contains 라이브 (live): a word's inside is not a concept of its own.
    assert "liveness:high" not in response.json()["intent"]["features"]


async def test_korean_word_with_a_particle_is_still_understood(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/llm/search", json={"query": "라이브로 듣는 록", "limit": 3})
    assert response.status_code == 200
    assert response.json()["intent"]["features"].get("liveness:high") == 1.0


async def test_feature_query_ranks_tracks_with_that_quality(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/llm/search", json={"query": "잔잔한 어쿠스틱 노래", "limit": 10}
    )
    items = response.json()["items"][:5]
    assert len(items) == 5
    assert all(
        item["audio_features"]["acousticness"] >= 0.5 and item["audio_features"]["energy"] <= 0.5
        for item in items
    )
    assert all("acousticness" in item["reason"] and "energy" in item["reason"] for item in items), [
        i["reason"] for i in items
    ]


async def test_search_filters_are_hard_constraints(client: httpx.AsyncClient) -> None:
    body = {
        "query": "happy songs",
        "limit": 20,
        "filters": {"genre": "rock", "min_energy": 0.7, "max_tempo": 130},
    }
    response = await client.post("/api/llm/search", json=body)
    assert response.status_code == 200
    items = response.json()["items"]
    assert items
    for item in items:
        assert item["genre"] == "rock"
        assert item["audio_features"]["energy"] >= 0.7 and item["audio_features"]["tempo"] <= 130


async def test_search_filter_matching_nothing_returns_empty_list(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/llm/search", json={"query": "rock", "filters": {"subgenre": "no such subgenre"}}
    )
    assert response.status_code == 200 and response.json()["items"] == []


async def test_search_finds_a_typed_title_and_artist_first(client: httpx.AsyncClient) -> None:
    found = (await client.post("/api/llm/search", json={"query": "hard rock", "limit": 1})).json()
    track = found["items"][0]
    typed = f"{track['artist']} {track['title']}".lower()
    response = await client.post("/api/llm/search", json={"query": typed, "limit": 5})
    assert response.status_code == 200
    first = response.json()["items"][0]
    assert first["track_id"] == track["track_id"] or (
        first["title"] == track["title"] and first["artist"] == track["artist"]
    )
    assert f"by {track['artist']}" in first["reason"] and not first["closest"]


async def test_search_intent_shows_numbers_and_eras_as_hard_filters(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/llm/search", json={"query": "songs over 150 bpm from the 2010s", "limit": 10}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["intent"]["ranges"] == {"tempo": {"min": 150.0, "max": None}}
    assert body["intent"]["years"] == {"min": 2010, "max": 2019}
    matching = [item for item in body["items"] if not item["closest"]]
    assert matching
    for item in matching:
        assert item["audio_features"]["tempo"] >= 150
        assert "range:tempo" in item["matched"] and "years" in item["matched"]


async def test_search_for_something_the_catalog_lacks_says_so(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/llm/search", json={"query": "zxqvbnm", "limit": 3})
    assert response.status_code == 200
    items = response.json()["items"]
    assert items and all(item["closest"] for item in items)
    assert all(item["reason"].startswith("nothing matched 'zxqvbnm'") for item in items)


@pytest.mark.parametrize(
    "body",
    [
        {"query": "", "limit": 5},
        {"query": "   ", "limit": 5},
        {"query": "x" * 501},
        {"query": "rock", "limit": 0},
        {"query": "rock", "limit": 51},
        {"query": "rock", "filters": {"min_energy": 0.9, "max_energy": 0.1}},
        {"query": "rock", "filters": {"min_energy": 2}},
        {"limit": 5},
    ],
)
async def test_search_bad_input_returns_422(client: httpx.AsyncClient, body: dict) -> None:
    response = await client.post("/api/llm/search", json=body)
    assert response.status_code == 422
    assert response.json()["detail"]


async def test_recommend_unknown_user_returns_404(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/llm/recommend", json={"user_id": 987654321012, "query": "rock", "limit": 5}
    )
    assert response.status_code == 404


async def test_recommend_bad_user_id_returns_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/llm/recommend", json={"user_id": 0, "query": "rock"})
    assert response.status_code == 422


async def test_recommend_excludes_owned_and_disliked_tracks(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    async with app.state.sessionmaker() as session:
        neo_soul = (
            (
                await session.execute(
                    sa.select(Track.track_id)
                    .where(Track.subgenre == "neo soul")
                    .order_by(Track.track_id)
                )
            )
            .scalars()
            .all()
        )
        owned, disliked = neo_soul[:5], neo_soul[5:8]
        user = await create_user(session, tracks=list(owned))
        for track_id in disliked:
            session.add(Interaction(user_id=user.id, track_id=track_id, like_score=-1))
        await session.commit()
    response = await client.post(
        "/api/llm/recommend", json={"user_id": user.id, "query": "neo soul", "limit": 50}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    returned = {item["track_id"] for item in body["items"]}
    assert body["profile_tracks"] == len(owned)
    assert returned and not returned & (set(owned) | set(disliked))
    still_available = len(neo_soul) - len(owned) - len(disliked)
    assert [item["subgenre"] for item in body["items"][:still_available]] == [
        "neo soul"
    ] * still_available


async def test_recommend_leans_towards_the_users_library(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    async with app.state.sessionmaker() as session:
        trap = (
            (
                await session.execute(
                    sa.select(Track.track_id)
                    .where(Track.subgenre == "trap")
                    .order_by(Track.track_id)
                )
            )
            .scalars()
            .all()
        )
        user = await create_user(
            session, tracks=list(trap[: len(trap) // 2])
        )  # the other half stays recommendable
    query = {"query": "rap", "limit": 10}
    plain = (await client.post("/api/llm/search", json=query)).json()["items"]
    personal = (await client.post("/api/llm/recommend", json=query | {"user_id": user.id})).json()[
        "items"
    ]
    count = lambda items: sum(item["subgenre"] == "trap" for item in items)  # noqa: E731
    assert count(personal) > count(plain)
    assert any("of your library" in item["reason"] for item in personal)


async def test_sync_requires_admin(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/llm/index/sync")).status_code == 403, "app credential"
    assert (
        await client.post("/api/llm/index/sync", headers={"Authorization": "Bearer wrong"})
    ).status_code == 401


async def test_index_sync_picks_up_added_and_enriched_tracks(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    before = (await client.get("/api/llm/index/status")).json()["tracks"]
    async with app.state.sessionmaker() as session:
        track = await create_track(
            session,
            title="Midnight Quokka Parade",
            artist="The Wombat Brothers",
            genre="rock",
            subgenre="hard rock",
            **dict.fromkeys(FEATURES),
            features_source=None,
        )
    sync = await client.post("/api/llm/index/sync", headers=ADMIN)
    assert sync.status_code == 202 and sync.json()["accepted"] in ("started", "queued")
    await app.state.runtime.manager.idle()
    status = (await client.get("/api/llm/index/status")).json()
    assert status["tracks"] == before + 1 and status["last_sync"]["changed"] == 1
    found = (
        await client.post(
            "/api/llm/search",
            json={"query": "Midnight Quokka Parade by The Wombat Brothers", "limit": 3},
        )
    ).json()["items"]
    assert found[0]["track_id"] == track.track_id, [
        (i["title"], i["artist"], i["reason"], i["score"]) for i in found
    ]
    assert found[0]["audio_features"] == {}

    # Enrichment writes predicted features and bumps updated_at; the next sync re-embeds the track.
    async with app.state.sessionmaker() as session:
        await session.execute(
            sa.update(Track)
            .where(Track.track_id == track.track_id)
            .values(
                energy=0.95,
                acousticness=0.02,
                danceability=0.5,
                valence=0.5,
                instrumentalness=0.0,
                liveness=0.1,
                speechiness=0.05,
                tempo=150.0,
                loudness=-4.0,
                features_source="predicted",
                updated_at=utcnow(),
            )
        )
        await session.commit()
    await client.post("/api/llm/index/sync", headers=ADMIN)
    await app.state.runtime.manager.idle()
    assert app.state.runtime.manager.last_sync["embedded"] == 1
    found = (
        await client.post(
            "/api/llm/search",
            json={"query": "Midnight Quokka Parade by The Wombat Brothers", "limit": 3},
        )
    ).json()["items"]
    assert found[0]["audio_features"]["energy"] == 0.95
    chroma = app.state.runtime.manager.store.load([track.track_id])
    assert chroma.ids == [track.track_id]


async def test_metrics_count_searches(client: httpx.AsyncClient) -> None:
    await client.post("/api/llm/search", json={"query": "trap", "limit": 1})
    text = (await client.get("/metrics")).text
    assert 'event="searches"' in text


async def test_sync_of_an_unchanged_catalog_reads_no_track_rows(app: FastAPI) -> None:
    # Every track was imported moments ago, inside the look-back window: only keys are scanned.
    summary = await app.state.runtime.manager.sync()
    assert summary["scanned"] >= 1
    assert (summary["seen"], summary["changed"], summary["embedded"]) == (0, 0, 0)


async def test_sync_reads_only_the_rows_whose_updated_at_moved(app: FastAPI) -> None:
    manager = app.state.runtime.manager
    await manager.sync()
    touched = manager.index.frame.track_ids[:3]
    async with app.state.sessionmaker() as session:
        await session.execute(
            sa.update(Track).where(Track.track_id.in_(touched)).values(updated_at=utcnow())
        )
        await session.commit()
    summary = await manager.sync()
    # Re-saved with the same content: read, compared, not re-embedded.
    assert (summary["seen"], summary["changed"], summary["embedded"]) == (3, 0, 0)
    assert (await manager.sync())["seen"] == 0


async def test_sync_after_the_scan_worker_died_seeds_a_new_one(app: FastAPI) -> None:
    manager = app.state.runtime.manager
    await manager.sync()
    manager._offload.close()  # as if the worker had died: the next one remembers nothing
    summary = await manager.sync()
    # The new worker is seeded with a full read, compared here: nothing changed, none lost.
    assert summary["seen"] == len(manager.index) and summary["changed"] == 0
    assert (await manager.sync())["seen"] == 0


async def test_sync_requests_answer_at_once_and_coalesce(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = app.state.runtime.manager
    release, runs = asyncio.Event(), []
    real = manager._sync_once

    async def slow_sync() -> dict:
        runs.append(1)
        await release.wait()
        return await real()

    monkeypatch.setattr(manager, "_sync_once", slow_sync)
    answers = [await client.post("/api/llm/index/sync", headers=ADMIN) for _ in range(8)]
    assert {a.status_code for a in answers} == {202}
    accepted = [a.json()["accepted"] for a in answers]
    assert accepted[0] == "started" and set(accepted[1:]) <= {"queued", "joined"}, accepted
    assert answers[-1].json()["running"]
    search = await client.post("/api/llm/search", json={"query": "trap", "limit": 3})
    assert search.status_code == 200  # served while the sync is held
    release.set()
    await manager.idle()
    assert 1 <= len(runs) <= 2  # eight requests, at most one run plus one queued


async def test_recommend_follows_the_common_contract(
    app: FastAPI, client: httpx.AsyncClient, llm_db_url: str
) -> None:
    """Every field of the shared request (filters, exclude, exclude_owned, max_per_artist,
    cursor) and of the shared answer (recommendation_id, next_cursor, scores in 0..1)."""
    async with app.state.sessionmaker() as session:
        rock = (
            (
                await session.execute(
                    sa.select(Track.track_id).where(Track.genre == "rock").order_by(Track.track_id)
                )
            )
            .scalars()
            .all()
        )
        user = await create_user(session, tracks=list(rock[:10]))
    await check_recommend_contract(
        client,
        "/api/llm/recommend",
        {"user_id": user.id, "query": "rock"},
        db_url=llm_db_url,
        source="llm",
    )
