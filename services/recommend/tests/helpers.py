"""Helpers for the recommend tests: the app on a test database with fake models."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from musicspace_recommend.app import create_app
from musicspace_recommend.peers import build_clients
from musicspace_recommend.settings import Settings
from services.recommend.tests.fakes import FakeModels
from tests.asgi import serving


def make_settings(db_url: str, **overrides: Any) -> Settings:
    fast = {"m1_deadline_s": 0.5, "m2_deadline_s": 0.5, "m3_deadline_s": 0.5}
    return Settings(database_url=db_url, **(fast | overrides))


@asynccontextmanager
async def recommend_app(
    db_url: str, fake: FakeModels, **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The service with its lifespan running, its models replaced by `fake`."""
    app = create_app(make_settings(db_url, **overrides))
    async with serving(app) as client:
        runtime = app.state.runtime
        await runtime.aclose()
        runtime.clients = build_clients(app.state.settings, transport=fake.transport())
        yield app, client


def served(app: FastAPI, *, source: str, arm: str) -> float:
    value = app.state.metrics.registry.get_sample_value(
        "musicspace_recommendations_total",
        {"service": "recommend", "source": source, "route": "/api/recommend", "arm": arm},
    )
    return value or 0.0
