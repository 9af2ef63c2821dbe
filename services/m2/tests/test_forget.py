"""Erasure in m2: the user's SVM and its sidecars go."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from musicspace_shared.forget import forget_user
from musicspace_shared.model_store import user_file

from .helpers import db_session, user_with_most_tracks


async def test_forget_removes_the_users_svm_files(
    client: httpx.AsyncClient, app: FastAPI, service_db_url: str, model_root: Path
) -> None:
    async with db_session(service_db_url) as session:
        user, _ = await user_with_most_tracks(session)
    await client.post("/api/m2/recommend", json={"user_id": user, "limit": 3})
    await app.state.runtime.svm_training.idle()  # trained behind the first request
    body = (await client.post("/api/m2/recommend", json={"user_id": user, "limit": 3})).json()
    assert body["strategy"] == "personal_svm"
    svm = user_file(model_root / "M2" / "user_svm_models", user, ".pkl")
    assert svm.exists()

    report = await forget_user(app, user)

    removed = sorted(p for entry in report.files for p in entry["paths"])
    assert f"M2/user_svm_models/{user}.pkl" in removed and len(removed) >= 2  # with sidecars
    assert not list(svm.parent.glob(f"{user}.*"))
    assert (await forget_user(app, user)).files == []
