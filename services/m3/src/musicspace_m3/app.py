"""m3 service: create_app(settings=None); the lifespan loads the catalog snapshot and models."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

from musicspace_m3 import VERSION
from musicspace_m3.api import router
from musicspace_m3.service import Recommender
from musicspace_m3.settings import Settings
from musicspace_shared.web import create_service_app, runtime_of


async def _model_ready(app: FastAPI) -> str | None:
    recommender = runtime_of(app, Recommender)
    if recommender is None:
        return "starting"
    return await asyncio.to_thread(recommender.readiness)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    def startup(app: FastAPI) -> AbstractAsyncContextManager[Recommender]:
        recommender = Recommender(settings, metrics=app.state.metrics)
        return recommender.running(app.state.sessionmaker)

    return create_service_app(
        service="m3",
        settings=settings,
        title="MusicSpace m3",
        version=VERSION,
        description="CatBoost ranking over interactions: a global ranker plus per-user fine-tuned rankers.",
        routers=[router],
        model_family="M3",  # /admin/models: usage and cleanup of this family
        startup=startup,
        readiness={"model": _model_ready},
    )
