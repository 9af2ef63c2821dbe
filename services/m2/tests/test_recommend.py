"""POST /api/m2/recommend: per-user SVM (trained behind the requests), exclusions, fallback,
storage."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from musicspace_shared.model_store import read_meta, user_file
from tests.factories import create_track, create_user
from tests.recommend_contract import check_recommend_contract

from .helpers import db_session, react, user_with_most_tracks


async def recommend_trained(
    client: httpx.AsyncClient, app: FastAPI, user_id: int, **body: object
) -> dict[str, object]:
    """The user's answer once the SVM their earlier requests asked for is trained."""
    await client.post("/api/m2/recommend", json={"user_id": user_id})
    await app.state.runtime.svm_training.idle()
    response = await client.post("/api/m2/recommend", json={"user_id": user_id, **body})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def events(app: FastAPI, name: str) -> float:
    return app.state.metrics.events.labels("m2", name)._value.get()  # type: ignore[no-any-return]


class HeldTraining:
    """The runtime's training thread, held until released."""

    def __init__(self, real: object) -> None:
        self.real = real
        self.release = asyncio.Event()
        self.started = 0

    async def run(self, func: object, *args: object, **kwargs: object) -> object:
        self.started += 1
        await self.release.wait()
        return await self.real.run(func, *args, **kwargs)  # type: ignore[attr-defined]

    def close(self) -> None:
        self.real.close()  # type: ignore[attr-defined]


async def test_a_first_visit_answers_from_the_content_space_and_trains_behind_the_request(
    client: httpx.AsyncClient,
    app: FastAPI,
    m2_db_url: str,
    model_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No request waits for a training: the first answer is the user's tracks' neighbours,
    named so; the SVM is trained in the background and the next visit uses it."""
    runtime = app.state.runtime
    async with db_session(m2_db_url) as session:
        _, owned = await user_with_most_tracks(session)
        user = await create_user(session, tracks=owned[:15])
    path = user_file(model_root / "M2" / "user_svm_models", user.id, ".pkl")
    held = HeldTraining(runtime.train_cpu)
    monkeypatch.setattr(runtime, "train_cpu", held)
    queued, trained = events(app, "user_svm_training_queued"), events(app, "user_svm_trainings")
    first = await client.post("/api/m2/recommend", json={"user_id": user.id, "limit": 10})
    assert first.status_code == 200, first.text  # answered while the training is held
    body = first.json()
    assert body["strategy"] == "fallback_similar_tracks" and body["fallback"] is True
    assert "being trained" in body["reason"] and body["svm_version"] is None
    assert body["tracks_used"] == 15
    ids = [item["track_id"] for item in body["items"]]
    assert len(ids) == 10 and not set(ids) & set(owned[:15])
    assert events(app, "user_svm_training_queued") == queued + 1
    assert held.started == 1 and read_meta(path) is None
    # A second request while the training runs neither waits nor queues it again.
    again = (await client.post("/api/m2/recommend", json={"user_id": user.id})).json()
    assert again["strategy"] == "fallback_similar_tracks"
    held.release.set()
    await runtime.svm_training.idle()
    assert events(app, "user_svm_trainings") == trained + 1
    meta = read_meta(path)
    assert meta is not None and meta.extra["positives"] == 15
    after = (await client.post("/api/m2/recommend", json={"user_id": user.id, "limit": 10})).json()
    assert after["strategy"] == "personal_svm" and after["fallback"] is False
    assert after["svm_version"] == meta.version and after["reason"] is None
    assert events(app, "user_svm_trainings") == trained + 1  # served, not trained again


async def test_a_full_training_queue_drops_the_user_and_says_so(
    client: httpx.AsyncClient, app: FastAPI, m2_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = app.state.runtime
    async with db_session(m2_db_url) as session:
        _, owned = await user_with_most_tracks(session)
        users = [await create_user(session, tracks=owned[i : i + 12]) for i in range(3)]
    held = HeldTraining(runtime.train_cpu)
    monkeypatch.setattr(runtime, "train_cpu", held)
    monkeypatch.setattr(runtime.svm_training, "limit", 1)
    dropped = events(app, "user_svm_training_dropped")
    bodies = [
        (await client.post("/api/m2/recommend", json={"user_id": u.id})).json() for u in users
    ]
    # The first runs (held), the second waits, the third finds the queue full.
    assert [b["strategy"] for b in bodies] == ["fallback_similar_tracks"] * 3
    assert "queue is full" in bodies[2]["reason"] and "being trained" in bodies[1]["reason"]
    assert events(app, "user_svm_training_dropped") == dropped + 1
    held.release.set()
    await runtime.svm_training.idle()
    assert held.started == 2


async def test_forgetting_a_user_drops_their_waiting_training(
    client: httpx.AsyncClient,
    app: FastAPI,
    m2_db_url: str,
    model_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from musicspace_shared.forget import forget_user

    runtime = app.state.runtime
    async with db_session(m2_db_url) as session:
        _, owned = await user_with_most_tracks(session)
        first, second = [await create_user(session, tracks=owned[i : i + 12]) for i in range(2)]
    held = HeldTraining(runtime.train_cpu)
    monkeypatch.setattr(runtime, "train_cpu", held)
    for user in (first, second):
        assert (
            await client.post("/api/m2/recommend", json={"user_id": user.id})
        ).status_code == 200
    assert runtime.svm_training.busy(first.id) and runtime.svm_training.waiting(second.id)
    report = await forget_user(app, second.id)
    assert report.cache_entries == 1 and not runtime.svm_training.busy(second.id)
    report = await forget_user(app, first.id)  # running (held): cancelled before it publishes
    held.release.set()
    await runtime.svm_training.idle()
    assert report.cache_entries == 1 and held.started == 1
    for user in (first, second):
        assert read_meta(user_file(model_root / "M2" / "user_svm_models", user.id, ".pkl")) is None


async def test_a_corrupt_stored_svm_is_replaced_behind_the_request(
    client: httpx.AsyncClient, app: FastAPI, m2_db_url: str, model_root: Path
) -> None:
    async with db_session(m2_db_url) as session:
        _, owned = await user_with_most_tracks(session)
        user = await create_user(session, tracks=owned[:12])
    trained = await recommend_trained(client, app, user.id)
    path = user_file(model_root / "M2" / "user_svm_models", user.id, ".pkl")
    path.write_bytes(path.read_bytes()[:-10])  # half-copied
    body = (await client.post("/api/m2/recommend", json={"user_id": user.id})).json()
    assert body["strategy"] == "fallback_similar_tracks"
    await app.state.runtime.svm_training.idle()
    again = (await client.post("/api/m2/recommend", json={"user_id": user.id})).json()
    assert again["strategy"] == "personal_svm" and again["svm_version"] != trained["svm_version"]


async def test_recommend_uses_personal_svm_and_excludes_owned_and_disliked(
    client: httpx.AsyncClient, app: FastAPI, m2_db_url: str
) -> None:
    async with db_session(m2_db_url) as session:
        user_id, owned = await user_with_most_tracks(session)
        body = await recommend_trained(client, app, user_id, limit=20)
        assert body["strategy"] == "personal_svm" and body["fallback"] is False
        assert body["tracks_used"] >= 10
        ids = [item["track_id"] for item in body["items"]]  # type: ignore[attr-defined]
        assert len(ids) == 20 and not set(ids) & set(owned)
        disliked = ids[0]
        await react(session, user_id=user_id, track_id=disliked, like_score=-1)
    second = (await client.post("/api/m2/recommend", json={"user_id": user_id, "limit": 20})).json()
    # The dislike is left out at once; the SVM fitted before it serves while the new one trains.
    assert disliked not in [item["track_id"] for item in second["items"]]
    assert second["strategy"] == "personal_svm" and second["svm_version"] == body["svm_version"]
    await app.state.runtime.svm_training.idle()
    third = (await client.post("/api/m2/recommend", json={"user_id": user_id, "limit": 20})).json()
    assert disliked not in [item["track_id"] for item in third["items"]]
    # The dislike changed the user's data: the SVM was retrained.
    assert third["svm_version"] != body["svm_version"]


async def test_recommend_stores_the_svm_and_reuses_it_while_tracks_are_unchanged(
    client: httpx.AsyncClient, app: FastAPI, m2_db_url: str, model_root: Path
) -> None:
    async with db_session(m2_db_url) as session:
        user_id, _ = await user_with_most_tracks(session)
    first = await recommend_trained(client, app, user_id)
    second = (await client.post("/api/m2/recommend", json={"user_id": user_id})).json()
    assert first["svm_version"] == second["svm_version"]
    meta = read_meta(user_file(model_root / "M2" / "user_svm_models", user_id, ".pkl"))
    assert meta is not None and meta.version == first["svm_version"]
    assert meta.extra["fingerprint"] and meta.sha256


async def test_recommend_user_with_few_tracks_gets_the_named_fallback(
    client: httpx.AsyncClient, m2_db_url: str
) -> None:
    async with db_session(m2_db_url) as session:
        _, owned = await user_with_most_tracks(session)
        user = await create_user(session, tracks=owned[:3])
    response = await client.post("/api/m2/recommend", json={"user_id": user.id, "limit": 10})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["strategy"] == "fallback_similar_tracks" and body["fallback"] is True
    assert "10" in body["reason"] and body["svm_version"] is None
    ids = [item["track_id"] for item in body["items"]]
    assert len(ids) == 10 and not set(ids) & set(owned[:3])


async def test_recommend_user_without_tracks_gets_popular_fallback(
    client: httpx.AsyncClient, m2_db_url: str
) -> None:
    async with db_session(m2_db_url) as session:
        user = await create_user(session)
    body = (await client.post("/api/m2/recommend", json={"user_id": user.id, "limit": 5})).json()
    assert body["strategy"] == "fallback_popular" and body["tracks_used"] == 0
    assert len(body["items"]) == 5


async def test_recommend_unknown_user_returns_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/m2/recommend", json={"user_id": 987654321012})
    assert response.status_code == 404


async def test_recommend_invalid_user_id_returns_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/m2/recommend", json={"user_id": -4})
    assert response.status_code == 422


class HeldRebuilds:
    """The runtime's worker process, held until released."""

    def __init__(self, real: object) -> None:
        self.real = real
        self.release = asyncio.Event()

    async def run(self, func: object, *args: object, **kwargs: object) -> object:
        await self.release.wait()
        return await self.real.run(func, *args, **kwargs)  # type: ignore[attr-defined]

    def close(self) -> None:
        self.real.close()  # type: ignore[attr-defined]


async def test_a_catalog_change_is_rebuilt_in_the_background_while_requests_keep_the_space(
    client: httpx.AsyncClient, app: FastAPI, m2_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = app.state.runtime
    async with db_session(m2_db_url) as session:
        user_id, _owned = await user_with_most_tracks(session)
    assert (await client.post("/api/m2/recommend", json={"user_id": user_id})).status_code == 200
    before = runtime.space
    held = HeldRebuilds(runtime.rebuilds)
    monkeypatch.setattr(runtime, "rebuilds", held)
    monkeypatch.setattr(runtime.settings, "catalog_check_s", 0.05)
    async with db_session(m2_db_url) as session:
        await create_track(session, title="Background Rebuild Anthem")
    await asyncio.sleep(0.1)
    answers = [await client.post("/api/m2/recommend", json={"user_id": user_id}) for _ in range(3)]
    assert {a.status_code for a in answers} == {200}
    assert runtime.space is before  # served from the current space; the rebuild is held
    held.release.set()
    for _ in range(600):
        if runtime.space is not before:
            break
        await asyncio.sleep(0.1)
    assert len(runtime.space.track_ids) == len(before.track_ids) + 1


async def test_recommend_follows_the_common_contract(
    client: httpx.AsyncClient, app: FastAPI, m2_db_url: str
) -> None:
    """Every field of the shared request (filters, exclude, exclude_owned, max_per_artist,
    cursor) and of the shared answer (recommendation_id, next_cursor, scores in 0..1)."""
    async with db_session(m2_db_url) as session:
        user_id, _ = await user_with_most_tracks(session)
    # The user's SVM first: answers compared across calls come from one strategy.
    await recommend_trained(client, app, user_id)
    await check_recommend_contract(
        client, "/api/m2/recommend", {"user_id": user_id}, db_url=m2_db_url, source="m2"
    )


@pytest.mark.parametrize("tracks", [0, 3], ids=["popular", "similar_tracks"])
async def test_fallback_scores_are_in_the_unit_interval(
    client: httpx.AsyncClient, m2_db_url: str, tracks: int
) -> None:
    async with db_session(m2_db_url) as session:
        _, owned = await user_with_most_tracks(session)
        user = await create_user(session, tracks=owned[:tracks])
    body = (await client.post("/api/m2/recommend", json={"user_id": user.id, "limit": 30})).json()
    scores = [item["score"] for item in body["items"]]
    assert body["fallback"] and len(scores) == 30
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)


async def test_the_db_connection_is_given_back_before_the_cpu_work(
    client: httpx.AsyncClient, app: FastAPI, m2_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog of first-time users (each trains an SVM) held every pooled connection at
    scale (pool timeouts): none of the request's own is held while the CPU work runs. Only the
    request's checkouts count: m2's background work (its catalog watcher, SVM training) may
    hold one of the pool's at the same moment."""
    runtime = app.state.runtime
    pool = app.state.engine.sync_engine.pool
    request_task = asyncio.current_task()  # the ASGI transport runs the app in this task
    checked_out: set[int] = set()
    ever_checked_out: set[int] = set()
    held: list[int] = []
    real = runtime.run_cpu

    def on_checkout(dbapi_connection: object, record: object, proxy: object) -> None:
        if asyncio.current_task() is request_task:
            checked_out.add(id(record))
            ever_checked_out.add(id(record))

    def on_checkin(dbapi_connection: object, record: object) -> None:
        checked_out.discard(id(record))

    async def counting(func, *args, **kwargs):  # type: ignore[no-untyped-def]
        held.append(len(checked_out))
        return await real(func, *args, **kwargs)

    async with db_session(m2_db_url) as session:
        user_id, _ = await user_with_most_tracks(session)
    # The first request may build the content space (it reads the DB) and asks for the user's
    # SVM, trained behind it (its own connection): not what is measured.
    assert (await client.post("/api/m2/recommend", json={"user_id": user_id})).status_code == 200
    await runtime.svm_training.idle()
    event.listen(pool, "checkout", on_checkout)
    event.listen(pool, "checkin", on_checkin)
    monkeypatch.setattr(runtime, "run_cpu", counting)
    try:
        response = await client.post("/api/m2/recommend", json={"user_id": user_id})
    finally:
        event.remove(pool, "checkout", on_checkout)
        event.remove(pool, "checkin", on_checkin)
    assert response.status_code == 200
    assert ever_checked_out, "the request's own checkouts were not seen"
    assert held and set(held) == {0}


@pytest.mark.parametrize("filters", [None, {"genre": "pop"}])
async def test_the_candidate_index_answers_as_scoring_every_track(
    client: httpx.AsyncClient, app: FastAPI, m2_db_url: str, filters: object
) -> None:
    """Both paths of recommend and similar (the index from M2_CANDIDATE_INDEX_MIN_TRACKS)."""
    async with db_session(m2_db_url) as session:
        user_id, owned = await user_with_most_tracks(session)
    await recommend_trained(client, app, user_id)
    settings = app.state.runtime.settings
    kept = settings.candidate_index_min_tracks
    answers = []
    try:
        for index_min in (1 << 62, 0):  # every track scored, then through the index
            settings.candidate_index_min_tracks = index_min
            body = {"user_id": user_id, "limit": 50, "filters": filters}
            got = (await client.post("/api/m2/recommend", json=body)).json()
            similar = (await client.get(f"/api/m2/similar/{owned[0]}?limit=20")).json()
            answers.append((got["strategy"], got["items"], similar["items"]))
    finally:
        settings.candidate_index_min_tracks = kept
    assert answers[0][0] == "personal_svm" and answers[0][1] and answers[0][2]
    assert answers[0] == answers[1]
