"""The Gemini path against a local fake of its REST API, through the SDK's base_url option."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI

from musicspace_llm.app import create_app
from musicspace_llm.embeddings import GeminiEmbedder, collection_name
from musicspace_llm.gemini_query import check_reading
from musicspace_llm.reasons import GeminiReasons
from musicspace_shared.db.engine import make_engine, make_sessionmaker
from musicspace_shared.db.migrate import upgrade
from musicspace_shared.errors import UpstreamUnavailable
from tests.asgi import serving
from tests.factories import create_track

from .fake_gemini import FakeGemini
from .helpers import make_settings, wait_ready

SECRET = "AIza-test-secret-key-never-logged"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGemini]:
    server = FakeGemini().start()
    yield server
    server.stop()


def embedder(fake: FakeGemini, **kw) -> GeminiEmbedder:
    return GeminiEmbedder(api_key=SECRET, base_url=fake.base_url, dim=64, backoff_s=0.01, **kw)


async def test_gemini_embeddings_are_batched_with_task_types(fake: FakeGemini) -> None:
    fake.calls.clear()
    gemini = embedder(fake, batch_size=3)
    docs = await gemini.embed_documents([f"track {i}" for i in range(7)])
    query = await gemini.embed_queries(["synthpop for a drive"])
    assert docs.shape == (7, 64) and query.shape == (1, 64)
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    batch_calls = [c for c in fake.calls if c[0].endswith(":batchEmbedContents")]
    assert [len(c[1]["requests"]) for c in batch_calls] == [3, 3, 1, 1]
    assert {r["taskType"] for c in batch_calls[:3] for r in c[1]["requests"]} == {
        "RETRIEVAL_DOCUMENT"
    }
    assert batch_calls[3][1]["requests"][0]["taskType"] == "RETRIEVAL_QUERY"
    assert "gemini-embedding-001" in batch_calls[0][0]
    assert batch_calls[0][2].get("x-goog-api-key") == SECRET


async def test_gemini_retries_429_then_succeeds_without_logging_the_key(
    fake: FakeGemini, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail_next = 2
    caplog.set_level(logging.DEBUG)
    vectors = await embedder(fake).embed_documents(["a track"])
    assert vectors.shape == (1, 64)
    assert fake.fail_next == 0
    assert "retry" in caplog.text
    assert SECRET not in caplog.text


async def test_gemini_gives_up_after_bounded_retries_with_503_error(fake: FakeGemini) -> None:
    fake.fail_next = 10
    with pytest.raises(UpstreamUnavailable) as info:
        await embedder(fake, max_retries=2).embed_documents(["a track"])
    assert SECRET not in str(info.value)
    fake.fail_next = 0


def test_collection_name_differs_per_provider_and_size(fake: FakeGemini) -> None:
    assert collection_name(embedder(fake)) != collection_name(
        GeminiEmbedder(api_key=SECRET, base_url=fake.base_url, dim=128)
    )
    assert "gemini" in collection_name(embedder(fake))


async def test_gemini_reasons_reject_ungrounded_claims(fake: FakeGemini) -> None:
    facts = [
        {"track_id": "t1", "title": "A", "artist": "X", "subgenre": "electropop", "genre": "pop"},
        {"track_id": "t2", "title": "B", "artist": "Y", "subgenre": "hard rock", "genre": "rock"},
    ]
    fake.reason_override = {"t2": "A great neo soul slow jam."}  # t2 is hard rock: must be rejected
    try:
        writer = GeminiReasons(client=embedder(fake).client, model="gemini-2.5-flash", timeout_s=5)
        reasons = await writer.write("synthpop", facts)
    finally:
        fake.reason_override = None
    assert reasons == {"t1": "A electropop track by X."}


async def gemini_app(fake: FakeGemini, tmp_path: Path, tracks: list[dict], **overrides) -> FastAPI:
    """The service on a SQLite database holding `tracks`, with Gemini behind the fake server."""
    sqlite_url = f"sqlite+aiosqlite:///{tmp_path / 'llm.db'}"
    await asyncio.to_thread(upgrade, sqlite_url)
    engine = make_engine(url=sqlite_url)
    async with make_sessionmaker(engine)() as session:
        for track in tracks:
            await create_track(session, **track)
    await engine.dispose()
    settings = make_settings(
        sqlite_url,
        tmp_path,
        provider="gemini",
        google_api_key=SECRET,
        gemini_base_url=fake.base_url,
        gemini_embedding_dim=128,
        **overrides,
    )
    return create_app(settings)


async def test_gemini_search_end_to_end_uses_fake_server(fake: FakeGemini, tmp_path: Path) -> None:
    tracks = [
        dict(title=f"Neon Night {i}", artist="Synth Band", subgenre="electropop", genre="pop")
        for i in range(12)
    ]
    app = await gemini_app(fake, tmp_path, tracks)
    async with serving(app) as client:
        await wait_ready(app, timeout_s=60)
        response = await client.post(
            "/api/llm/search", json={"query": "synthpop for a late night drive", "limit": 5}
        )
        status = (await client.get("/api/llm/index/status")).json()
        nothing = await client.post("/api/llm/search", json={"query": "zxqvbnm", "limit": 3})
    assert response.status_code == 200, response.text
    # Gemini writes reasons only for tracks that fit; the closest keep saying nothing matched.
    assert all(
        item["closest"] and item["reason"].startswith("nothing matched 'zxqvbnm'")
        for item in nothing.json()["items"]
    )
    body = response.json()
    assert body["provider"] == "gemini" and len(body["items"]) == 5
    assert all(item["subgenre"] == "electropop" for item in body["items"])
    assert all(
        item["reason"].endswith("by Synth Band.") for item in body["items"]
    )  # written by the fake model
    assert status["collection"].startswith("tracks__gemini__gemini-embedding-001")
    assert any(c[0].endswith(":generateContent") for c in fake.calls)


def test_gemini_reading_keeps_only_values_that_make_sense() -> None:
    reading = check_reading(
        json.dumps(
            {
                "genres": ["rock", "polka"],
                "subgenres": ["hard rock", "nonsense"],
                "moods": ["energy:high", "energy:sideways"],
                "ranges": [
                    {"feature": "tempo", "min": 160},
                    {"feature": "danceability", "min": 3},  # off its 0..1 scale
                    {"feature": "energy", "min": 0.9, "max": 0.1},  # empty
                    {"feature": "shoe size", "min": 1},
                ],
                "year_min": 1980,
                "year_max": 1989,
                "artist": "BTS",
            }
        )
    )
    assert reading is not None
    assert reading.genres == ["rock"] and reading.subgenres == ["hard rock"]
    assert reading.moods == ["energy:high"]
    assert reading.ranges == {"tempo": (160.0, None)}
    assert reading.years == (1980, 1989) and reading.artist == "BTS"
    assert check_reading("not json") is None and check_reading("[1, 2]") is None


async def test_gemini_reads_the_query_and_the_offline_reading_stands_when_it_fails(
    fake: FakeGemini, tmp_path: Path
) -> None:
    tracks = [
        dict(title=f"{name} {i}", artist=artist, genre=genre)
        for i in range(6)
        for name, artist, genre in (("Dynamite", "BTS", "pop"), ("Bangers", "Other Band", "rock"))
    ]
    query = "songs by the bangtan boys"  # a name no offline matching can read
    fake.readings[query] = {"artist": "BTS", "ranges": [{"feature": "tempo", "max": 300}]}
    app = await gemini_app(fake, tmp_path, tracks, gemini_reasons=False, query_timeout_s=0.5)
    try:
        async with serving(app) as client:
            await wait_ready(app, timeout_s=60)

            async def search() -> dict:
                response = await client.post("/api/llm/search", json={"query": query, "limit": 6})
                assert response.status_code == 200, response.text
                return response.json()

            read = await search()
            fake.reading_status = 503
            failed = await search()
            fake.reading_status, fake.reading_delay_s = 200, 2.0
            late = await search()
    finally:
        fake.reading_status, fake.reading_delay_s = 200, 0.0
    assert read["intent"]["parser"] == "gemini" and read["intent"]["artist"] == "BTS"
    assert read["intent"]["ranges"] == {}  # 300 BPM is off the tempo scale: dropped
    assert all(item["artist"] == "BTS" and item["reason"] == "by BTS" for item in read["items"])
    for body in (failed, late):
        assert body["intent"]["parser"] == "offline" and body["intent"]["artist"] is None
        assert len(body["items"]) == 6
