"""Erasure in m3: the user's fine-tuned model, its cached answers and held model go."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from musicspace_shared.forget import forget_user, mentions

from .helpers import users_with_tracks


async def test_forget_removes_the_users_model_and_cached_answers(
    client: httpx.AsyncClient, app: FastAPI, m3_db_url: str, model_root: Path
) -> None:
    user, _owned = (await users_with_tracks(m3_db_url))[3]
    trained = (await client.post("/api/m3/train", json={"user_id": user})).json()
    assert trained["model"] == "personal", trained
    await client.post("/api/m3/recommend", json={"user_id": user, "limit": 5})
    runtime = app.state.runtime
    assert any(mentions(key, user) for key in runtime._cache)
    assert any(mentions(key, user) for key in runtime._ranked)
    path = model_root / "M3" / "user_models" / f"{user}_.cbm"
    assert path.exists()

    report = await forget_user(app, user)

    assert report.service == "m3" and f"M3/user_models/{user}_.cbm" in report.files[0]["paths"]
    assert report.cache_entries >= 2  # the answer and the held personal model
    assert not any(mentions(key, user) for key in runtime._cache)
    assert not any(mentions(key, user) for key in runtime._ranked)
    assert user not in runtime.models.users._cache
    assert not list(path.parent.glob(f"{user}_*")) and not path.exists()
    answer = (await client.post("/api/m3/recommend", json={"user_id": user, "limit": 5})).json()
    assert answer["model"] == "global"  # no personal model left to serve them
