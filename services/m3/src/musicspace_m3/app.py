"""m3 service: create_app(settings=None); the lifespan loads the catalog snapshot and models."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from musicspace_m3 import VERSION
from musicspace_m3.api import router
from musicspace_m3.service import Recommender
from musicspace_m3.settings import Settings
from musicspace_shared.web import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def startup(app: FastAPI) -> AsyncIterator[None]:
        recommender = Recommender(settings, count=app.state.metrics.count)
        app.state.recommender = recommender
        await recommender.start(app.state.sessionmaker)
        try:
            yield
        finally:
            recommender.close()

    async def model_ready(app: FastAPI) -> str | None:
        recommender: Recommender | None = getattr(app.state, "recommender", None)
        if recommender is None:
            return "starting"
        return await asyncio.to_thread(recommender.readiness)

    return create_service_app(
        service="m3",
        settings=settings,
        title="MusicSpace m3",
        version=VERSION,
        description="CatBoost ranking over interactions: a global ranker plus per-user fine-tuned rankers.",
        routers=[router],
        model_family="M3",  # /admin/models: usage and cleanup of this family
        startup=startup,
        readiness={"model": model_ready},
    )
