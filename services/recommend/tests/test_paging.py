"""POST /api/recommend takes the common request: the contract, paging a blend without overlap
or skip, the selection passed to every model, foreign cursors, the popular answer filtered."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from services.recommend.tests.fakes import FakeModels
from services.recommend.tests.helpers import recommend_app
from tests.factories import create_track, create_user, features
from tests.recommend_contract import check_recommend_contract


@pytest.fixture
async def catalog(session) -> list[dict]:
    """24 tracks: 6 artists of 4 tracks, two genres, years 1990..2013, energy low and high."""
    tag = uuid.uuid4().hex[:8]
    rows = []
    for i in range(24):
        row = {
            "track_id": f"t{tag}{i:02d}",
            "artist": f"artist {tag} {i % 6}",
            "genre": f"g{tag}{i % 2}",
            "subgenre": f"s{tag}{i % 3}",
            "release_date": f"{1990 + i}-01-01",
            **features(energy=0.9 if i % 4 else 0.3),
        }
        await create_track(session, **row)
        rows.append(row)
    return rows


def _ids(body: dict) -> list[str]:
    return [item["track_id"] for item in body["items"]]


async def _pages(client, body: dict, limit: int) -> list[str]:
    seen, cursor = [], None
    for _ in range(50):
        page = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        response = await client.post("/api/recommend", json=body | page)
        assert response.status_code == 200, response.text
        seen += _ids(response.json())
        if (cursor := response.json()["next_cursor"]) is None:
            return seen
    raise AssertionError("paging did not end")


async def test_one_model_answering_follows_the_common_contract(any_db_url, session, catalog):
    ids = [row["track_id"] for row in catalog]
    user = (await create_user(session, tracks=[ids[3]])).id
    fake = FakeModels(rankings={"m3": ids})
    async with recommend_app(any_db_url, fake) as (_app, client):
        await check_recommend_contract(
            client, "/api/recommend", {"user_id": user}, db_url=any_db_url, source="m3"
        )
    assert fake.callers == {"recommend"}  # the model routes do not count these as served


async def test_pages_of_a_blend_concatenate_to_the_one_list(any_db_url, session, catalog):
    ids = [row["track_id"] for row in catalog]
    user = (await create_user(session, tracks=[ids[0]])).id
    fake = FakeModels(rankings={"m1": ids[::-1], "m2": ids[5:] + ids[:5], "m3": ids[1::2]})
    async with recommend_app(any_db_url, fake) as (_app, client):
        whole = (await client.post("/api/recommend", json={"user_id": user, "limit": 100})).json()
        assert whole["source"] == "blend" and whole["next_cursor"] is None
        assert await _pages(client, {"user_id": user}, 5) == _ids(whole)
        assert len(_ids(whole)) == 23 and ids[0] not in _ids(whole)
        capped = {"user_id": user, "max_per_artist": 2}
        pages = await _pages(client, capped, 3)
        one = (await client.post("/api/recommend", json=capped | {"limit": 100})).json()
    assert pages == _ids(one) and len(pages) == 12
    assert set(Counter(catalog[ids.index(t)]["artist"] for t in pages).values()) == {2}


async def test_the_selection_goes_to_every_model_asked(any_db_url, session, catalog) -> None:
    ids = [row["track_id"] for row in catalog]
    user = (await create_user(session, tracks=[ids[0]])).id
    fake = FakeModels(rankings={m: ids for m in ("m1", "m2", "m3", "llm")})
    selection = {
        "filters": {"genre": catalog[0]["genre"], "min_energy": 0.5},
        "exclude": [ids[2]],
        "exclude_owned": False,
        "max_per_artist": 1,
    }
    body = {"user_id": user, "query": "anything", **selection}
    async with recommend_app(any_db_url, fake) as (_app, client):
        answer = (await client.post("/api/recommend", json=body)).json()
    assert sorted(fake.asked()) == ["llm", "m1", "m2", "m3"]
    for _model, sent in fake.calls:
        assert {k: sent[k] for k in selection} == selection
    # The fakes ignore the selection; the answer honours it anyway (re-checked here).
    assert answer["items"]
    for t in _ids(answer):
        row = catalog[ids.index(t)]
        assert row["genre"] == catalog[0]["genre"] and row["energy"] >= 0.5 and t != ids[2]
    artists = [catalog[ids.index(t)]["artist"] for t in _ids(answer)]
    assert len(artists) == len(set(artists))


@pytest.mark.parametrize(
    "change",
    [{"query": "rock"}, {"exclude_owned": False}, {"filters": {"min_year": 1990}}],
    ids=["query", "exclude_owned", "filters"],
)
async def test_a_cursor_from_another_request_is_refused(any_db_url, session, catalog, change):
    ids = [row["track_id"] for row in catalog]
    user = (await create_user(session, tracks=[ids[0]])).id
    fake = FakeModels(rankings={"m3": ids, "llm": ids})
    async with recommend_app(any_db_url, fake) as (_app, client):
        first = (await client.post("/api/recommend", json={"user_id": user, "limit": 2})).json()
        calls = len(fake.calls)
        body = {"user_id": user, "cursor": first["next_cursor"], **change}
        response = await client.post("/api/recommend", json=body)
        other = (await create_user(session, tracks=[ids[0]])).id
        foreign = await client.post("/api/recommend", json=body | {"user_id": other})
    assert response.status_code == 422 and "another request" in response.json()["detail"]
    assert foreign.status_code == 422 and "cursor" in foreign.json()["detail"]
    assert len(fake.calls) == calls  # refused before any model was asked


async def test_the_popular_answer_honours_filters_exclude_and_pages(any_db_url, session, catalog):
    ids = [row["track_id"] for row in catalog]
    user = (await create_user(session, tracks=[ids[0]])).id
    fake = FakeModels(modes={m: "down" for m in ("m1", "m2", "m3")})
    genre = catalog[1]["genre"]
    body = {"user_id": user, "filters": {"genre": genre, "max_year": 2005}, "exclude": [ids[3]]}
    settings = {"popular_cache_s": 0, "popular_per_genre": 500}
    async with recommend_app(any_db_url, fake, **settings) as (_app, client):
        whole = (await client.post("/api/recommend", json=body | {"limit": 100})).json()
        paged = await _pages(client, body, 2)
    assert whole["source"] == "popular" and paged == _ids(whole)
    expected = {row["track_id"] for row in catalog[1:16:2]} - {ids[3]}  # 1991..2005, odd rows
    assert set(_ids(whole)) == expected
