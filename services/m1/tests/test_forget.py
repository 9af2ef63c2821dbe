"""Erasure in m1: the user's model folder, cached answers and held model go; others stay."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from musicspace_shared.forget import forget_user, mentions


def _held(app: FastAPI, user_id: int) -> int:
    runtime = app.state.runtime
    answers = sum(
        mentions(key, user_id) for key in (*runtime.ranked_cache, *runtime.response_cache)
    )
    return answers + (user_id in runtime.models.users._cache)


async def test_forget_removes_the_users_model_and_cached_answers(
    client: httpx.AsyncClient, app: FastAPI, demo_users: list[int], model_root: Path
) -> None:
    user, other = demo_users[-1], demo_users[-2]
    for user_id in (user, other):
        assert (await client.post("/api/m1/train", json={"user_id": user_id})).status_code == 200
        await client.post("/api/m1/recommend", json={"user_id": user_id, "limit": 5})
    assert _held(app, user) >= 3  # ranked list, rendered answer, the loaded personal model

    report = await forget_user(app, user)

    assert report.service == "m1" and report.files[0]["paths"] == [f"M1/user_models/{user}"]
    assert report.cache_entries >= 3 and _held(app, user) == 0
    assert not (model_root / "M1" / "user_models" / str(user)).exists()
    assert (model_root / "M1" / "user_models" / str(other) / "model.pkl").exists()
    again = await forget_user(app, user)
    assert again.files == [] and again.cache_entries == 0
    status = (await client.get(f"/api/m1/status/{user}")).json()
    assert status["trained"] is False  # the user row is still there (enrichment deletes it)
