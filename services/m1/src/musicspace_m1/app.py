"""m1 service: create_app(settings=None); the lifespan builds everything."""

from __future__ import annotations

from fastapi import FastAPI

from musicspace_m1 import VERSION
from musicspace_m1.api import router
from musicspace_m1.settings import Settings
from musicspace_shared.web import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        service="m1",
        settings=settings,
        title="MusicSpace m1",
        version=VERSION,
        description="Audio-feature hybrid recommender with per-user models and a profile fallback.",
        routers=[router],
    )
