"""Per-user fine-tuning: a personal model serves the user afterwards; too little data -> global."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
from fastapi import FastAPI

from musicspace_shared.limits import TrainingQueue

from .helpers import new_user, users_with_tracks


async def test_train_user_publishes_personal_model_used_afterwards(
    client: httpx.AsyncClient, m3_db_url: str, model_root: Path
) -> None:
    user_id, owned = (await users_with_tracks(m3_db_url))[4]
    response = await client.post("/api/m3/train", json={"user_id": user_id})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "personal" and body["reason"] is None and body["base_version"]
    path = model_root / "M3" / "user_models" / f"{user_id}_.cbm"
    meta = json.loads(path.with_name(path.name + ".meta.json").read_text())
    assert (
        meta["version"] == body["version"] and meta["extra"]["base_version"] == body["base_version"]
    )
    rec = (await client.post("/api/m3/recommend", json={"user_id": user_id, "limit": 10})).json()
    assert rec["model"] == "personal" and rec["version"] == body["version"]
    assert not {i["track_id"] for i in rec["items"]} & set(owned)


async def test_train_user_with_too_little_data_keeps_global_model(
    client: httpx.AsyncClient, m3_db_url: str, model_root: Path
) -> None:
    tracks = (await users_with_tracks(m3_db_url))[0][1][:3]
    user_id = await new_user(m3_db_url, tracks)
    body = (await client.post("/api/m3/train", json={"user_id": user_id})).json()
    assert body["model"] == "global" and "global model serves" in body["reason"]
    assert body["positives_used"] == 3
    assert not (model_root / "M3" / "user_models" / f"{user_id}_.cbm").exists()
    rec = (await client.post("/api/m3/recommend", json={"user_id": user_id, "limit": 5})).json()
    assert rec["model"] == "global" and len(rec["items"]) == 5


async def test_corrupt_user_model_falls_back_to_global(
    client: httpx.AsyncClient, m3_db_url: str, model_root: Path
) -> None:
    user_id, _ = (await users_with_tracks(m3_db_url))[6]
    assert (await client.post("/api/m3/train", json={"user_id": user_id})).json()[
        "model"
    ] == "personal"
    path = model_root / "M3" / "user_models" / f"{user_id}_.cbm"
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    meta_file = path.with_name(path.name + ".meta.json")
    meta_file.write_text(meta_file.read_text())  # a new mtime, so the cached copy is re-checked
    rec = (await client.post("/api/m3/recommend", json={"user_id": user_id, "limit": 5})).json()
    assert rec["model"] == "global"


async def test_train_unknown_user_returns_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/m3/train", json={"user_id": 987654321})
    assert response.status_code == 404


async def test_train_invalid_user_id_returns_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/m3/train", json={"user_id": "abc"})
    assert response.status_code == 422


async def test_concurrent_trains_for_one_user_run_once(
    client: httpx.AsyncClient, m3_db_url: str
) -> None:
    user_id = (await users_with_tracks(m3_db_url))[5][0]
    before = await _trainings(client)
    both = await asyncio.gather(
        *(client.post("/api/m3/train", json={"user_id": user_id}) for _ in range(2))
    )
    first, second = (r.json() for r in both)
    assert [r.status_code for r in both] == [200, 200]
    assert first["trained_at"] == second["trained_at"], "the second request joined the first"
    assert await _trainings(client) == before + 1
    later = await client.post("/api/m3/train", json={"user_id": user_id})
    assert later.status_code == 200
    # trained_at has whole seconds: the count says that a train after the first one ran again.
    assert await _trainings(client) == before + 2, "a train after it finished runs again"


async def _trainings(client: httpx.AsyncClient) -> float:
    """m3's count of personal trainings so far (its /metrics)."""
    text = (await client.get("/metrics")).text
    line = next(
        (
            row
            for row in text.splitlines()
            if row.startswith("musicspace_events_total{") and 'event="trainings"' in row
        ),
        None,
    )
    return float(line.rsplit(" ", 1)[1]) if line else 0.0


async def test_train_queue_beyond_its_limit_answers_429(
    app: FastAPI, client: httpx.AsyncClient, m3_db_url: str
) -> None:
    users = [u for u, _ in (await users_with_tracks(m3_db_url))[6:8]]
    saved = app.state.trainings
    app.state.trainings = TrainingQueue(limit=1)
    try:
        answers = await asyncio.gather(
            *(client.post("/api/m3/train", json={"user_id": u}) for u in users)
        )
    finally:
        app.state.trainings = saved
    assert sorted(r.status_code for r in answers) == [200, 429]
    refused = next(r for r in answers if r.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1
