"""m1 service: create_app(settings=None); the lifespan builds everything."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

from musicspace_m1 import VERSION
from musicspace_m1.api import router
from musicspace_m1.runtime import Runtime
from musicspace_m1.settings import Settings
from musicspace_shared.web import create_service_app, runtime_of


async def _model_ready(app: FastAPI) -> str | None:
    runtime = runtime_of(app, Runtime)
    if runtime is None:
        return "starting"
    return await asyncio.to_thread(runtime.models.holder.readiness)


async def _catalog_ready(app: FastAPI) -> str | None:
    runtime = runtime_of(app, Runtime)
    return None if runtime and runtime.index is not None else "catalog index not loaded yet"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    def startup(app: FastAPI) -> AbstractAsyncContextManager[Runtime]:
        return Runtime(settings, metrics=app.state.metrics).running(app.state.sessionmaker)

    return create_service_app(
        service="m1",
        settings=settings,
        title="MusicSpace m1",
        version=VERSION,
        description="Audio-feature hybrid recommender with per-user models and a profile fallback.",
        routers=[router],
        model_family="M1",  # /admin/models: usage and cleanup of this family
        startup=startup,
        readiness={"model": _model_ready, "catalog": _catalog_ready},
    )
