"""recommend service: create_app(settings=None); the lifespan builds the models' clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from musicspace_recommend import VERSION
from musicspace_recommend.api import router
from musicspace_recommend.peers import build_clients
from musicspace_recommend.popular import PopularCache
from musicspace_recommend.runtime import Runtime
from musicspace_recommend.settings import Settings
from musicspace_shared.web import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def startup(_app: FastAPI) -> AsyncIterator[Runtime]:
        runtime = Runtime(
            clients=build_clients(settings),
            popular=PopularCache(
                ttl_s=settings.popular_cache_s,
                per_genre=settings.popular_per_genre,
                new_per_genre=settings.new_per_genre,
                k=settings.rrf_k,
            ),
            arms=settings.arm_list,
        )
        try:
            yield runtime
        finally:
            await runtime.aclose()

    return create_service_app(
        service="recommend",
        settings=settings,
        title="MusicSpace recommend",
        version=VERSION,
        description="One recommend call for the app: blends m1, m2, m3 (and llm for a query), "
        "falls back when a model is down or slow, assigns A/B arms.",
        routers=[router],
        startup=startup,
    )
