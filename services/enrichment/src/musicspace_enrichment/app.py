"""enrichment service: create_app(settings=None); the lifespan builds clients and the job runner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from musicspace_enrichment import VERSION
from musicspace_enrichment.api import admin_router, router
from musicspace_enrichment.clients import build_peers
from musicspace_enrichment.erasure import PeerForget
from musicspace_enrichment.init_models import sync_llm
from musicspace_enrichment.jobs import BulkEnrichment
from musicspace_enrichment.runtime import Runtime
from musicspace_enrichment.settings import Settings
from musicspace_enrichment.users_api import router as users_router
from musicspace_shared.web import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def startup(app: FastAPI) -> AsyncIterator[Runtime]:
        peers = build_peers(settings)

        async def reindex() -> None:
            await sync_llm(peers=runtime.peers, admin_key=settings.admin_key)

        bulk = BulkEnrichment(
            engine=app.state.engine,
            m2=peers.predictor,
            settings=settings,
            metrics=app.state.metrics,
            on_finished=reindex if settings.notify_llm else None,
        )
        runtime = Runtime(peers, bulk, PeerForget(settings))
        if settings.resume_jobs:
            bulk.watch()
        try:
            yield runtime
        finally:
            await bulk.shutdown()
            await runtime.peers.aclose()
            await runtime.forget.aclose()

    return create_service_app(
        service="enrichment",
        settings=settings,
        title="MusicSpace enrichment",
        version=VERSION,
        description="Fills missing audio features through m2, initialises new users, runs the bulk "
        "job; takes users, their libraries and catalog tracks, and erases users.",
        routers=[router, users_router, admin_router],
        startup=startup,
    )
