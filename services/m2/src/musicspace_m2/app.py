"""m2 service: create_app(settings=None); the lifespan loads the model (if trained)."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

from musicspace_m2 import VERSION
from musicspace_m2.api import router
from musicspace_m2.runtime import Runtime
from musicspace_m2.settings import Settings
from musicspace_shared.web import create_service_app, runtime_of


async def _model_ready(app: FastAPI) -> str | None:
    runtime = runtime_of(app, Runtime)
    if runtime is None:
        return "starting"
    return await asyncio.to_thread(runtime.holder.readiness)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    def startup(app: FastAPI) -> AbstractAsyncContextManager[Runtime]:
        return Runtime(settings, metrics=app.state.metrics).running(app.state.sessionmaker)

    return create_service_app(
        service="m2",
        settings=settings,
        title="MusicSpace m2",
        version=VERSION,
        description="Audio features predicted from text (TF-IDF + gradient boosting), similar tracks, per-user SVM recommendations.",
        routers=[router],
        model_family="M2",  # /admin/models: usage and cleanup of this family
        startup=startup,
        readiness={"model": _model_ready},
    )
