"""m3 fixtures: this package's own demo-subset database, a temp model root, a trained global model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from musicspace_m3.app import create_app
from musicspace_m3.settings import Settings
from musicspace_m3.training import train_global_from_db
from tests.asgi import asgi_client
from tests.databases import demo_database

# Small and fast: the behaviour under test does not need a strong model.
FAST = {
    "iterations": 40,
    "train_splits": 1,
    "n_candidates": 200,
    "finetune_iterations": 10,
    "finetune_splits": 3,
    "train_threads": 1,
    "catalog_check_s": 0.0,
    "reload_check_s": 0.0,
}


@pytest.fixture(scope="session")
def m3_db_url(demo_subset: tuple[Path, Path]) -> str:
    """A migrated MariaDB database with the demo subset, owned by the m3 tests (they write events)."""
    return demo_database(demo_subset, "msm3")


def make_settings(db_url: str, model_root: Path, **overrides: Any) -> Settings:
    return Settings(database_url=db_url, model_root=model_root, **(FAST | overrides))


@pytest.fixture(scope="session")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("m3models")


@pytest.fixture(scope="session")
async def trained(m3_db_url: str, model_root: Path) -> dict[str, Any]:
    """The global model trained once for the session (small iterations)."""
    return await train_global_from_db(settings=make_settings(m3_db_url, model_root))


@pytest.fixture(scope="session")
async def app(trained: dict[str, Any], m3_db_url: str, model_root: Path) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(m3_db_url, model_root))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as c:
        yield c
