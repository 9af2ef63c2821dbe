"""Shared test helpers: settings for a test app, waiting for the index."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI

from musicspace_llm.index import TrackIndex
from musicspace_llm.settings import Settings
from musicspace_shared.catalog import TrackFrame

ADMIN_KEY = "llm-test-admin-key"


def make_settings(db_url: str, model_root: Path, **overrides: Any) -> Settings:
    values = {"provider": "offline", "catalog_check_s": 0.0, "admin_api_key": ADMIN_KEY} | overrides
    return Settings(database_url=db_url, model_root=model_root, **values)


async def wait_ready(app: FastAPI, timeout_s: float = 300.0) -> None:
    manager = app.state.runtime.manager
    deadline = time.monotonic() + timeout_s
    while manager.readiness() is not None:
        if manager.state == "failed" or time.monotonic() > deadline:
            raise RuntimeError(manager.readiness())
        await asyncio.sleep(0.1)


def synthetic_index(vectors: np.ndarray, popularity: np.ndarray) -> TrackIndex:
    """A catalog of one subgenre with these document vectors ("song i" by "artist i % 300")."""
    n = len(vectors)
    ids = [f"t{i:07d}" for i in range(n)]
    frame = TrackFrame(
        track_ids=ids,
        titles=[f"song {i}" for i in range(n)],
        artists=[f"artist {i % 300}" for i in range(n)],
        albums=["" for _ in ids],
        genres=["pop" for _ in ids],
        subgenres=["dance pop" for _ in ids],
        popularity=popularity,
        features=np.full((n, 9), np.nan),
    )
    return TrackIndex(frame=frame, decades=np.zeros(n, dtype=np.int64), vectors=vectors)
