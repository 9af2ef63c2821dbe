"""Shared test helpers: settings for a test app, waiting for the index."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from musicspace_llm.settings import Settings

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
