"""Readiness follows the global model; the basic path also runs on SQLite (the embedded default)."""

from __future__ import annotations

from pathlib import Path

from musicspace_m1.app import create_app
from musicspace_m1.training import train_global_from_db
from musicspace_shared.db.engine import make_engine, make_sessionmaker
from services.m1.tests.helpers import make_settings
from tests.asgi import serving
from tests.factories import create_track, create_user


async def test_readyz_fails_until_global_model_exists(demo_db_url: str, tmp_path: Path) -> None:
    settings = make_settings(demo_db_url, tmp_path)
    app = create_app(settings)
    async with serving(app) as client:
        before = await client.get("/readyz")
        assert before.status_code == 503
        assert before.json()["checks"]["model"] != "ok"
        assert (await client.post("/api/m1/recommend", json={"user_id": 1})).status_code in (
            404,
            503,
        )
        summary = await train_global_from_db(settings=settings)
        assert summary["sha256"] and (tmp_path / "M1" / "audio_predictor.pkl").is_file()
        after = await client.get("/readyz")
        assert after.status_code == 200, after.text


async def test_recommend_basic_path_on_sqlite(sqlite_url: str, tmp_path: Path) -> None:
    engine = make_engine(url=sqlite_url)
    async with make_sessionmaker(engine)() as session:
        users = []
        for u in range(4):
            tracks = [
                await create_track(
                    session,
                    artist=f"Artist {u}-{i % 3}",
                    subgenre=f"sub {u}",
                    danceability=0.1 + 0.05 * i,
                )
                for i in range(14)
            ]
            users.append(await create_user(session, tracks=[t.track_id for t in tracks]))
    await engine.dispose()
    settings = make_settings(sqlite_url, tmp_path)
    await train_global_from_db(settings=settings)
    app = create_app(settings)
    async with serving(app) as client:
        assert (await client.post("/api/m1/train", json={"user_id": users[0].id})).json()[
            "model"
        ] == "personal"
        response = await client.post("/api/m1/recommend", json={"user_id": users[0].id, "limit": 5})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model"] == "personal" and len(body["items"]) == 5
        assert (
            max(
                sum(1 for i in body["items"] if i["artist"] == a)
                for a in {i["artist"] for i in body["items"]}
            )
            <= 2
        )
        # The common shape on SQLite too: pages of two make the page of four.
        body4 = {"user_id": users[0].id, "limit": 4, "filters": {"genre": "pop"}}
        four = (await client.post("/api/m1/recommend", json=body4)).json()
        first = (await client.post("/api/m1/recommend", json=body4 | {"limit": 2})).json()
        second = (
            await client.post(
                "/api/m1/recommend", json=body4 | {"limit": 2, "cursor": first["next_cursor"]}
            )
        ).json()
        ids = [i["track_id"] for i in first["items"] + second["items"]]
        assert ids == [i["track_id"] for i in four["items"]] and len(ids) == 4
        assert first["recommendation_id"].startswith("m1.") and four["source"] == "m1"


async def test_corrupt_new_global_model_falls_back_to_the_previous_one(
    trained: dict, model_root: Path, demo_db_url: str, tmp_path: Path
) -> None:
    import shutil

    from musicspace_shared.model_store import (
        ModelMeta,
        load_pickle,
        new_version,
        now_iso,
        publish_pickle,
    )

    shutil.copytree(
        model_root / "M1", tmp_path / "M1", ignore=shutil.ignore_patterns("user_models")
    )
    path = tmp_path / "M1" / "audio_predictor.pkl"
    model, meta = load_pickle(path)
    newer = ModelMeta(version=new_version(), trained_at=now_iso(), rows=meta.rows)
    publish_pickle(path, model, newer, keep_previous=True)
    path.write_bytes(path.read_bytes()[:-10])  # the new one is half-written
    app = create_app(make_settings(demo_db_url, tmp_path))
    async with serving(app) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["model"].startswith("degraded: serving an earlier")
        response = await client.post("/api/m1/recommend", json={"user_id": 1, "limit": 3})
        assert response.status_code == 200
        assert response.json()["version"] == meta.version
        metrics = (await client.get("/metrics")).text
        assert 'musicspace_events_total{event="model_load_failures",service="m1"}' in metrics
