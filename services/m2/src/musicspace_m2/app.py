"""m2 service: create_app(settings=None); the lifespan loads the model (if trained)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI

from musicspace_m2 import VERSION
from musicspace_m2.api import router
from musicspace_m2.runtime import Runtime, model_readiness
from musicspace_m2.settings import Settings
from musicspace_shared.web import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def startup(app: FastAPI) -> AsyncIterator[None]:
        executor = ThreadPoolExecutor(max_workers=settings.cpu_workers, thread_name_prefix="m2-cpu")
        runtime = Runtime(
            settings=settings,
            executor=executor,
            metrics=app.state.metrics,
            sessionmaker=app.state.sessionmaker,
        )
        app.state.runtime = runtime
        # A missing model is not fatal: /readyz says "missing" until `musicspace train m2` runs.
        await runtime.refresh_model(force=True)
        try:
            yield
        finally:
            await runtime.close()
            executor.shutdown(wait=False, cancel_futures=True)

    async def model_ready(app: FastAPI) -> str | None:
        return await model_readiness(app.state.runtime)

    return create_service_app(
        service="m2",
        settings=settings,
        title="MusicSpace m2",
        version=VERSION,
        description="Audio features predicted from text (TF-IDF + gradient boosting), similar tracks, per-user SVM recommendations.",
        routers=[router],
        model_family="M2",  # /admin/models: usage and cleanup of this family
        startup=lambda app: startup(app),
        readiness={"model": model_ready},
    )
