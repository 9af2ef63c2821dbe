"""POST /api/recommend on both engines with fake models: the blend, every fallback, the arms,
the popular answer for users without data, credentials and strict input."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from musicspace_recommend.fusion import fuse
from musicspace_shared.recommendation_ids import parse
from services.recommend.tests.fakes import FakeModels
from services.recommend.tests.helpers import recommend_app, served
from tests.asgi import asgi_client
from tests.credentials import as_user
from tests.factories import create_interaction, create_track, create_user


@pytest.fixture
async def tracks(session) -> list[str]:
    return [(await create_track(session)).track_id for _ in range(8)]


@pytest.fixture
async def user(session, tracks) -> int:
    """A user whose library is the last track."""
    return (await create_user(session, tracks=[tracks[-1]])).id


def _rankings(tracks: list[str]) -> dict[str, list[str]]:
    a, b, c, d, e = tracks[:5]
    return {"m1": [a, b, c], "m2": [b, a, d], "m3": [c, b, a, e], "llm": [e, d, a]}


def _statuses(body: dict) -> dict[str, str]:
    return {o["model"]: o["status"] for o in body["outcomes"]}


async def test_blend_fuses_every_model_that_fits_and_says_so(any_db_url, tracks, user) -> None:
    fake = FakeModels(rankings=_rankings(tracks))
    async with recommend_app(any_db_url, fake) as (app, client):
        response = await client.post("/api/recommend", json={"user_id": user, "limit": 3})
        assert response.status_code == 200, response.text
        body = response.json()
        assert served(app, source="blend", arm="blend") == 1
    settings = app.state.settings
    expected = fuse(
        {m: r for m, r in _rankings(tracks).items() if m != "llm"},
        k=settings.rrf_k,
        weights={m: settings.weight(m) for m in ("m1", "m2", "m3")},
    )
    assert [i["track_id"] for i in body["items"]] == [f.track_id for f in expected[:3]]
    assert (body["source"], body["arm"], body["models"]) == ("blend", "blend", ["m1", "m2", "m3"])
    assert parse(body["recommendation_id"]).source == "blend"
    assert parse(body["recommendation_id"]).arm == "blend"
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert body["items"][0]["ranks"] == expected[0].ranks
    assert body["items"][0]["title"].endswith(body["items"][0]["track_id"])
    assert _statuses(body) == {
        "m1": "contributed",
        "m2": "contributed",
        "m3": "contributed",
        "llm": "not_asked",
    }
    assert sorted(fake.asked()) == ["m1", "m2", "m3"]


async def test_with_m3_down_the_others_answer_and_m3_is_named(any_db_url, tracks, user) -> None:
    fake = FakeModels(rankings=_rankings(tracks), modes={"m3": "down"})
    async with recommend_app(any_db_url, fake) as (_app, client):
        body = (await client.post("/api/recommend", json={"user_id": user})).json()
    assert body["models"] == ["m1", "m2"] and body["source"] == "blend"
    m3 = next(o for o in body["outcomes"] if o["model"] == "m3")
    assert m3["status"] == "unavailable" and "ConnectError" in m3["detail"]


async def test_a_slow_model_is_cut_at_its_deadline(any_db_url, tracks, user) -> None:
    fake = FakeModels(rankings=_rankings(tracks), modes={"m2": "slow"}, slow_s=10)
    async with recommend_app(any_db_url, fake, m2_deadline_s=0.3) as (_app, client):
        started = time.monotonic()
        body = (await client.post("/api/recommend", json={"user_id": user})).json()
        took = time.monotonic() - started
    assert took < 3, took
    assert body["models"] == ["m1", "m3"]
    m2 = next(o for o in body["outcomes"] if o["model"] == "m2")
    assert m2["status"] == "timeout" and "0.3 s" in m2["detail"]


async def test_empty_refusing_and_unready_models_are_left_out_with_reasons(
    any_db_url, tracks, user
) -> None:
    fake = FakeModels(rankings=_rankings(tracks), modes={"m1": "rejected", "m2": "empty"})
    async with recommend_app(any_db_url, fake) as (_app, client):
        body = (await client.post("/api/recommend", json={"user_id": user})).json()
    assert body["source"] == "m3" and body["models"] == ["m3"]
    assert parse(body["recommendation_id"]).source == "m3"
    outcomes = {o["model"]: o for o in body["outcomes"]}
    assert (outcomes["m1"]["status"], outcomes["m1"]["http_status"]) == ("rejected", 404)
    assert "not found" in outcomes["m1"]["detail"]
    assert outcomes["m2"]["status"] == "empty"
    fake.modes = {"m1": "not_ready", "m2": "garbage", "m3": "down"}
    async with recommend_app(any_db_url, fake) as (_app, client):
        body = (await client.post("/api/recommend", json={"user_id": user})).json()
    assert _statuses(body) == {
        "m1": "not_ready",
        "m2": "rejected",
        "m3": "unavailable",
        "llm": "not_asked",
    }
    assert body["source"] == "popular" and body["models"] == []


async def test_when_every_model_fails_popular_tracks_answer_without_owned_ones(
    any_db_url, session, tracks
) -> None:
    genre = f"g{uuid.uuid4().hex[:10]}"
    hit = (await create_track(session, genre=genre, popularity=100)).track_id
    second = (await create_track(session, genre=genre, popularity=99)).track_id
    owner = (await create_user(session, tracks=[hit])).id
    fake = FakeModels(modes={m: "down" for m in ("m1", "m2", "m3")})
    async with recommend_app(any_db_url, fake, popular_cache_s=0) as (app, client):
        body = (await client.post("/api/recommend", json={"user_id": owner, "limit": 100})).json()
        assert served(app, source="popular", arm="blend") == 1
    ids = [i["track_id"] for i in body["items"]]
    assert hit not in ids and second in ids
    assert body["items"][ids.index(second)]["reason"] == f"popular in {genre}"


async def test_a_user_without_data_gets_popular_and_new_per_genre_and_no_model_is_asked(
    any_db_url, session
) -> None:
    genre = f"g{uuid.uuid4().hex[:10]}"
    day_before = datetime.now(UTC) - timedelta(days=1)  # MariaDB keeps whole seconds
    by_popularity = [
        (await create_track(session, genre=genre, popularity=p, created_at=day_before)).track_id
        for p in (90, 80, 70)
    ]
    newest = (await create_track(session, genre=genre, popularity=1)).track_id
    cold = (await create_user(session)).id
    fake = FakeModels()
    settings = {"popular_cache_s": 0, "popular_per_genre": 3, "new_per_genre": 1}
    async with recommend_app(any_db_url, fake, **settings) as (_app, client):
        body = (await client.post("/api/recommend", json={"user_id": cold, "limit": 100})).json()
    assert fake.calls == []
    assert body["source"] == "popular" and parse(body["recommendation_id"]).source == "popular"
    ours = [i for i in body["items"] if i["track_id"] in {*by_popularity, newest}]
    assert [i["track_id"] for i in ours if i["reason"].startswith("popular")] == by_popularity
    assert {i["reason"] for i in ours if i["track_id"] == newest} == {f"new in {genre}"}
    assert all(o["status"] == "not_asked" for o in body["outcomes"])


async def test_a_user_with_interactions_only_is_ranked_by_m3_alone(
    any_db_url, session, tracks
) -> None:
    listener = (await create_user(session)).id
    await create_interaction(session, user_id=listener, track_id=tracks[0], play_count=3)
    fake = FakeModels(rankings=_rankings(tracks))
    async with recommend_app(any_db_url, fake) as (_app, client):
        body = (await client.post("/api/recommend", json={"user_id": listener})).json()
    assert fake.asked() == ["m3"] and body["source"] == "m3"
    m1 = next(o for o in body["outcomes"] if o["model"] == "m1")
    assert m1["status"] == "not_asked" and "no library" in m1["detail"]


async def test_a_single_model_arm_serves_that_model_and_falls_back_to_the_others(
    any_db_url, tracks, user
) -> None:
    fake = FakeModels(rankings=_rankings(tracks))
    async with recommend_app(any_db_url, fake, arms="m3:100") as (app, client):
        body = (await client.post("/api/recommend", json={"user_id": user})).json()
        assert (body["arm"], body["source"], fake.asked()) == ("m3", "m3", ["m3"])
        assert parse(body["recommendation_id"]).arm == "m3"
        assert "asked only when m3" in _outcome(body, "m1")["detail"]
        fake.modes = {"m3": "down"}
        body = (await client.post("/api/recommend", json={"user_id": user})).json()
        assert (body["arm"], body["source"], body["models"]) == ("m3", "blend", ["m1", "m2"])
        assert served(app, source="blend", arm="m3") == 1


def _outcome(body: dict, model: str) -> dict:
    return next(o for o in body["outcomes"] if o["model"] == model)


async def test_blend_method_naming_one_model_serves_it_in_the_blend_arm(
    any_db_url, tracks, user
) -> None:
    fake = FakeModels(rankings=_rankings(tracks))
    async with recommend_app(any_db_url, fake, blend_method="m3") as (_app, client):
        body = (await client.post("/api/recommend", json={"user_id": user})).json()
    assert (body["arm"], body["source"], fake.asked()) == ("blend", "m3", ["m3"])
    assert [i["track_id"] for i in body["items"]] == _rankings(tracks)["m3"]


async def test_a_query_asks_llm_and_the_others_rerank_its_tracks(any_db_url, tracks, user) -> None:
    fake = FakeModels(rankings=_rankings(tracks))
    async with recommend_app(any_db_url, fake) as (_app, client):
        body = (
            await client.post("/api/recommend", json={"user_id": user, "query": " calm piano "})
        ).json()
    llm_call = next(sent for model, sent in fake.calls if model == "llm")
    assert llm_call["query"] == "calm piano"
    ids = [i["track_id"] for i in body["items"]]
    assert set(ids) == set(_rankings(tracks)["llm"])
    assert ids[0] == tracks[0]  # third for llm, but ranked by m1, m2 and m3 too
    assert body["models"] == ["m1", "m2", "m3", "llm"]


async def test_exclude_and_the_users_own_tracks_are_never_returned(
    any_db_url, session, tracks
) -> None:
    owner = (await create_user(session, tracks=[tracks[1]])).id
    fake = FakeModels(rankings=_rankings(tracks))
    async with recommend_app(any_db_url, fake) as (_app, client):
        body = (
            await client.post("/api/recommend", json={"user_id": owner, "exclude": [tracks[2]]})
        ).json()
    ids = [i["track_id"] for i in body["items"]]
    assert tracks[1] not in ids and tracks[2] not in ids and tracks[0] in ids


async def test_the_same_user_is_always_in_the_same_arm(any_db_url, tracks, user) -> None:
    fake = FakeModels(rankings=_rankings(tracks))
    arms = "blend:50,m3:25,m1:25"
    async with recommend_app(any_db_url, fake, arms=arms) as (_app, client):
        first = {(await client.post("/api/recommend", json={"user_id": user})).json()["arm"]}
    async with recommend_app(any_db_url, fake, arms=arms) as (_app, client):
        for _ in range(3):
            first.add((await client.post("/api/recommend", json={"user_id": user})).json()["arm"])
    assert len(first) == 1


async def test_unknown_user_404_and_another_users_token_403(any_db_url, user) -> None:
    async with recommend_app(any_db_url, FakeModels()) as (app, client):
        response = await client.post("/api/recommend", json={"user_id": 987_654_321_012})
        assert response.status_code == 404
        async with asgi_client(app, headers=as_user(user)) as own:
            assert (await own.post("/api/recommend", json={"user_id": user})).status_code == 200
            other = await own.post("/api/recommend", json={"user_id": user + 1})
            assert other.status_code == 403
        async with asgi_client(app, headers={}) as anonymous:
            response = await anonymous.post("/api/recommend", json={"user_id": user})
            assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"cursor": "abc"}, "not a cursor this API issued"),
        ({"filters": {"min_energy": 2}}, "min_energy"),
        ({"filters": {"min_year": 2000, "max_year": 1990}}, "must not exceed"),
        ({"max_per_artist": 0}, "max_per_artist"),
        ({"exclude_owned": "yes"}, "exclude_owned"),
        ({"query": "   "}, "must not be blank"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "5"}, "limit"),
        ({"exclude": ["bad id!"]}, "exclude"),
    ],
)
async def test_invalid_input_is_refused_with_422_naming_it(any_db_url, user, body, message) -> None:
    async with recommend_app(any_db_url, FakeModels()) as (_app, client):
        response = await client.post("/api/recommend", json={"user_id": user, **body})
    assert response.status_code == 422
    assert message in str(response.json())


async def test_popular_lists_are_read_again_only_after_the_cache_time(any_db_url, session) -> None:
    cold = (await create_user(session)).id
    fake = FakeModels()

    async def genres(client) -> set[str]:  # noqa: ANN001
        body = (await client.post("/api/recommend", json={"user_id": cold, "limit": 100})).json()
        return {i["reason"].split(" in ", 1)[1] for i in body["items"]}

    for ttl, seen_at_once in ((3600, False), (0, True)):
        async with recommend_app(any_db_url, fake, popular_cache_s=ttl) as (_app, client):
            await genres(client)
            genre = f"g{uuid.uuid4().hex[:10]}"
            await create_track(session, genre=genre, popularity=100)
            assert (genre in await genres(client)) is seen_at_once, ttl
