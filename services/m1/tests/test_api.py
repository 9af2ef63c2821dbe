"""m1 routes over the demo subset: training, recommendations, status, errors."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import httpx

from musicspace_shared.db.engine import make_engine, make_sessionmaker
from musicspace_shared.db.tables import UserTrack
from musicspace_shared.features import FEATURES
from tests.factories import create_interaction, create_track, create_user
from tests.recommend_contract import check_recommend_contract


async def _session(url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(url=url)
    return engine, make_sessionmaker(engine)()


async def test_train_user_with_enough_tracks_writes_personal_model_and_metadata(
    client: httpx.AsyncClient, demo_users: list[int], model_root: Path
) -> None:
    user_id = demo_users[0]
    response = await client.post("/api/m1/train", json={"user_id": user_id})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "personal" and body["reason"] is None
    assert body["tracks_used"] >= 20
    folder = model_root / "M1" / "user_models" / str(user_id)
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["sha256"] == hashlib.sha256((folder / "model.pkl").read_bytes()).hexdigest()
    assert metadata["tracks_used"] == body["tracks_used"] and metadata["version"] == body["version"]
    assert set(metadata["profile"]) == {"mean", "spread"} and "tempo" in metadata["profile"]["mean"]
    assert metadata["trained_at"] and "metrics" in metadata


async def test_train_user_with_few_feature_tracks_gets_profile_fallback_with_reason(
    client: httpx.AsyncClient, demo_db_url: str
) -> None:
    engine, session = await _session(demo_db_url)
    async with session:
        tracks = [await create_track(session, artist="Fallback Artist") for _ in range(3)]
        user = await create_user(session, tracks=[t.track_id for t in tracks])
    await engine.dispose()
    response = await client.post("/api/m1/train", json={"user_id": user.id})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "profile_fallback"
    assert "10" in body["reason"] and body["tracks_used"] == 3
    status = (await client.get(f"/api/m1/status/{user.id}")).json()
    assert status["trained"] is True and status["fallback"] is True


async def test_recommend_excludes_owned_and_disliked_and_caps_per_artist(
    client: httpx.AsyncClient, demo_users: list[int], demo_db_url: str
) -> None:
    user_id = demo_users[1]
    assert (await client.post("/api/m1/train", json={"user_id": user_id})).status_code == 200
    first = await client.post("/api/m1/recommend", json={"user_id": user_id, "limit": 30})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["model"] == "personal" and len(body["items"]) == 30
    engine, session = await _session(demo_db_url)
    async with session:
        owned = {
            row.track_id
            for row in (
                await session.execute(
                    UserTrack.__table__.select().where(UserTrack.user_id == user_id)
                )
            ).all()
        }
        top = body["items"][0]["track_id"]
        await create_interaction(session, user_id=user_id, track_id=top, like_score=-1)
    await engine.dispose()
    items = body["items"]
    assert not owned & {i["track_id"] for i in items}
    assert max(Counter(i["artist"] for i in items).values()) <= 2
    assert all(i["drivers"] and isinstance(i["score"], float) for i in items)
    again = (
        await client.post(
            "/api/m1/recommend", json={"user_id": user_id, "limit": 30, "max_per_artist": 1}
        )
    ).json()
    assert top not in {i["track_id"] for i in again["items"]}
    assert max(Counter(i["artist"] for i in again["items"]).values()) == 1


async def test_cached_answers_follow_the_users_state_and_model(
    client: httpx.AsyncClient, demo_users: list[int], demo_db_url: str, app
) -> None:  # type: ignore[no-untyped-def]
    """The same request twice is served from m1's answer cache; a new dislike, a new track in
    the user's PMS or a retrain must each change the answer at once."""
    user_id = demo_users[4]
    # Tracks added by earlier tests: their background rebuild (which moves the audio scaling a
    # little) must not land between the requests compared below.
    await app.state.runtime.refresh_catalog(app.state.sessionmaker)
    first_train = (await client.post("/api/m1/train", json={"user_id": user_id})).json()
    request = {"user_id": user_id, "limit": 10}
    first = (await client.post("/api/m1/recommend", json=request)).json()
    repeat = (await client.post("/api/m1/recommend", json=request)).json()
    assert repeat["recommendation_id"] != first["recommendation_id"]  # fresh per answer
    assert repeat | {"recommendation_id": None} == first | {"recommendation_id": None}
    shorter = (await client.post("/api/m1/recommend", json=request | {"limit": 4})).json()
    assert shorter["items"] == first["items"][:4]

    top, second = first["items"][0]["track_id"], first["items"][1]["track_id"]
    engine, session = await _session(demo_db_url)
    async with session:
        await create_interaction(session, user_id=user_id, track_id=top, like_score=-1)
    after_dislike = (await client.post("/api/m1/recommend", json=request)).json()
    assert top not in {i["track_id"] for i in after_dislike["items"]}
    async with make_sessionmaker(engine)() as session:
        session.add(UserTrack(user_id=user_id, track_id=second))
        await session.commit()
    await engine.dispose()
    after_adding = (await client.post("/api/m1/recommend", json=request)).json()
    assert second not in {i["track_id"] for i in after_adding["items"]}

    retrained = (await client.post("/api/m1/train", json={"user_id": user_id})).json()
    assert retrained["version"] != first_train["version"]
    after_retrain = (await client.post("/api/m1/recommend", json=request)).json()
    assert after_retrain["version"] == retrained["version"] != first["version"]


async def test_recommend_with_exclude_owned_false_may_return_owned_tracks(
    client: httpx.AsyncClient, demo_users: list[int], demo_db_url: str
) -> None:
    user_id = demo_users[2]
    engine, session = await _session(demo_db_url)
    async with session:
        owned = {
            row.track_id
            for row in (
                await session.execute(
                    UserTrack.__table__.select().where(UserTrack.user_id == user_id)
                )
            ).all()
        }
    await engine.dispose()
    body = (
        await client.post(
            "/api/m1/recommend",
            json={"user_id": user_id, "limit": 50, "exclude_owned": False, "max_per_artist": 50},
        )
    ).json()
    assert owned & {i["track_id"] for i in body["items"]}


async def test_recommend_for_untrained_user_serves_profile_fallback(
    client: httpx.AsyncClient, demo_db_url: str
) -> None:
    engine, session = await _session(demo_db_url)
    async with session:
        track = await create_track(session, artist="Lonely Artist")
        user = await create_user(session, tracks=[track.track_id])
    await engine.dispose()
    response = await client.post("/api/m1/recommend", json={"user_id": user.id, "limit": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "profile_fallback" and len(body["items"]) == 5
    assert track.track_id not in {i["track_id"] for i in body["items"]}


async def test_unknown_user_returns_404_on_every_route(client: httpx.AsyncClient) -> None:
    unknown = 987_654_321_012
    assert (await client.post("/api/m1/recommend", json={"user_id": unknown})).status_code == 404
    assert (await client.post("/api/m1/train", json={"user_id": unknown})).status_code == 404
    response = await client.get(f"/api/m1/status/{unknown}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_recommend_with_bad_limit_returns_422(
    client: httpx.AsyncClient, demo_users: list[int]
) -> None:
    response = await client.post("/api/m1/recommend", json={"user_id": demo_users[0], "limit": 0})
    assert response.status_code == 422


async def test_status_reports_trained_model_and_last_use(
    client: httpx.AsyncClient, demo_users: list[int]
) -> None:
    user_id = demo_users[3]
    before = (await client.get(f"/api/m1/status/{user_id}")).json()
    assert before["trained"] is False and before["version"] is None
    trained = (await client.post("/api/m1/train", json={"user_id": user_id})).json()
    await client.post("/api/m1/recommend", json={"user_id": user_id, "limit": 3})
    after = (await client.get(f"/api/m1/status/{user_id}")).json()
    assert after["trained"] is True and after["fallback"] is False
    assert after["version"] == trained["version"] and after["tracks_used"] == trained["tracks_used"]
    assert after["trained_at"] and after["last_used_at"]


async def test_tracks_without_features_are_still_recommended(
    client: httpx.AsyncClient, demo_db_url: str, app
) -> None:  # type: ignore[no-untyped-def]
    engine, session = await _session(demo_db_url)
    async with session:
        held = [await create_track(session, artist="Featureless Band") for _ in range(12)]
        bare = await create_track(
            session,
            artist="Featureless Band",
            features_source=None,
            **dict.fromkeys(FEATURES),
        )
        user = await create_user(session, tracks=[t.track_id for t in held])
    await engine.dispose()
    await app.state.runtime.refresh_catalog(app.state.sessionmaker)
    body = (await client.post("/api/m1/recommend", json={"user_id": user.id, "limit": 10})).json()
    assert bare.track_id in {i["track_id"] for i in body["items"]}


async def test_user_whose_tracks_have_no_features_gets_fallback_and_recommendations(
    client: httpx.AsyncClient, demo_db_url: str
) -> None:
    blank = dict.fromkeys(FEATURES)
    engine, session = await _session(demo_db_url)
    async with session:
        tracks = [
            await create_track(session, artist="Bare Artist", features_source=None, **blank)
            for _ in range(4)
        ]
        user = await create_user(session, tracks=[t.track_id for t in tracks])
    await engine.dispose()
    trained = (await client.post("/api/m1/train", json={"user_id": user.id})).json()
    assert trained["model"] == "profile_fallback" and trained["tracks_used"] == 0
    response = await client.post("/api/m1/recommend", json={"user_id": user.id, "limit": 5})
    assert response.status_code == 200 and len(response.json()["items"]) == 5


async def test_recommend_follows_the_common_contract(
    client: httpx.AsyncClient, demo_users: list[int], demo_db_url: str
) -> None:
    """Every field of the shared request (filters, exclude, exclude_owned, max_per_artist,
    cursor) and of the shared answer (recommendation_id, next_cursor, scores in 0..1)."""
    user_id = demo_users[5]
    assert (await client.post("/api/m1/train", json={"user_id": user_id})).status_code == 200
    await check_recommend_contract(
        client, "/api/m1/recommend", {"user_id": user_id}, db_url=demo_db_url, source="m1"
    )


async def test_a_cursor_from_before_a_retrain_reads_on_in_the_new_ranking(
    client: httpx.AsyncClient, demo_users: list[int]
) -> None:
    user_id = demo_users[6]
    assert (await client.post("/api/m1/train", json={"user_id": user_id})).status_code == 200
    page = (await client.post("/api/m1/recommend", json={"user_id": user_id, "limit": 3})).json()
    assert (await client.post("/api/m1/train", json={"user_id": user_id})).status_code == 200
    stale = await client.post(
        "/api/m1/recommend", json={"user_id": user_id, "limit": 3, "cursor": page["next_cursor"]}
    )
    assert stale.status_code == 200, stale.text
    assert len(stale.json()["items"]) == 3  # the second page of the retrained model's ranking
