"""m1 service: create_app(settings=None); the lifespan builds everything."""

from __future__ import annotations

from fastapi import FastAPI

from musicspace_m1 import VERSION
from musicspace_m1.api import router
from musicspace_m1.runtime import Runtime
from musicspace_m1.settings import Settings
from musicspace_shared.health import Degraded
from musicspace_shared.web import create_service_app


async def _model_ready(app: FastAPI) -> str | None:
    runtime: Runtime = app.state.runtime
    try:
        loaded = await runtime.global_model()
    except Exception as exc:  # noqa: BLE001 - a corrupt file is "not ready", with the reason
        return f"global model unreadable: {type(exc).__name__}"
    if loaded is None:
        return "global model M1/audio_predictor.pkl not trained yet"
    problem = runtime.models.problem
    return Degraded(f"serving an earlier global model: {problem}") if problem else None


async def _catalog_ready(app: FastAPI) -> str | None:
    return None if app.state.runtime.index is not None else "catalog index not loaded yet"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    def startup(app: FastAPI):  # type: ignore[no-untyped-def]
        app.state.runtime = Runtime(settings, metrics=app.state.metrics)
        return app.state.runtime.running(app.state.sessionmaker)

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
