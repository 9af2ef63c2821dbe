"""m2 fixtures: this package's own demo-subset database, a temp model root, a trained model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from musicspace_m2.app import create_app
from musicspace_m2.predictor import PredictorConfig
from musicspace_m2.settings import Settings
from musicspace_m2.training import train_global_from_db
from tests.asgi import asgi_client
from tests.databases import demo_database

# Small and fast: the behaviour under test does not need a strong model.
FAST_MODEL = PredictorConfig(folds=2, hgb_max_iter=25, hgb_min_samples_leaf=20)
FAST_SETTINGS = {"reload_check_s": 0.0, "catalog_refresh_s": 0.0}


@pytest.fixture(scope="session")
def m2_db_url(demo_subset: tuple[Path, Path]) -> str:
    """A migrated MariaDB database with the demo subset, owned by the m2 tests (they add rows)."""
    return demo_database(demo_subset, "msm2")


def make_settings(db_url: str, model_root: Path, **overrides: Any) -> Settings:
    return Settings(database_url=db_url, model_root=model_root, **(FAST_SETTINGS | overrides))


@pytest.fixture(scope="session")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("m2models")


@pytest.fixture(scope="session")
async def trained(m2_db_url: str, model_root: Path) -> dict[str, Any]:
    """The feature model trained once for the session (small config)."""
    return await train_global_from_db(
        settings=make_settings(m2_db_url, model_root), config=FAST_MODEL, progress=lambda _m: None
    )


@pytest.fixture(scope="session")
async def app(trained: dict[str, Any], m2_db_url: str, model_root: Path) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(m2_db_url, model_root))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as c:
        yield c


async def client_for(application: FastAPI) -> httpx.AsyncClient:
    return asgi_client(application)
