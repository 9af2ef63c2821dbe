"""llm fixtures: this package's own demo-subset database, a temp Chroma, the app built once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from musicspace_llm.app import create_app
from tests.asgi import asgi_client
from tests.databases import demo_database
from tests.factories import write_demo_subset

from .helpers import make_settings, wait_ready


@pytest.fixture(scope="session")
def llm_subset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A smaller slice of the demo data (~1,300 tracks), so the index builds in seconds."""
    return write_demo_subset(tmp_path_factory.mktemp("llmdemo"), playlists=12, extra_tracks=400)


@pytest.fixture(scope="session")
def llm_db_url(llm_subset: tuple[Path, Path]) -> str:
    """A migrated MariaDB database with the demo slice, owned by the llm tests (they add tracks)."""
    return demo_database(llm_subset, "msllm")


@pytest.fixture(scope="session")
async def app(llm_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FastAPI]:
    """The offline service over the demo subset; the index is built once for the session."""
    application = create_app(make_settings(llm_db_url, tmp_path_factory.mktemp("llmmodels")))
    async with application.router.lifespan_context(application):
        await wait_ready(application)
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as c:
        yield c
