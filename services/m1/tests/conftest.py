"""m1 fixtures: the demo-subset database, a temp model root with a trained global model, an app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from musicspace_m1.app import create_app
from musicspace_m1.settings import Settings
from musicspace_m1.training import train_global_from_db
from musicspace_shared.db.engine import make_engine
from tests.asgi import asgi_client

# The catalog check runs often so tests that add tracks see them without waiting.
FAST = {"catalog_refresh_s": 0.2}


def make_settings(db_url: str, model_root: Path, **overrides: Any) -> Settings:
    return Settings(database_url=db_url, model_root=model_root, **(FAST | overrides))


@pytest.fixture(scope="session")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("m1models")


@pytest.fixture(scope="session")
async def trained(demo_db_url: str, model_root: Path) -> dict[str, Any]:
    """The global model, trained once for the session from the demo subset."""
    return await train_global_from_db(settings=make_settings(demo_db_url, model_root))


@pytest.fixture(scope="session")
async def app(
    trained: dict[str, Any], demo_db_url: str, model_root: Path
) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(demo_db_url, model_root))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as c:
        yield c


@pytest.fixture(scope="session")
async def demo_users(demo_db_url: str) -> list[int]:
    """Imported playlist users with at least 20 PMS tracks that have features, most first."""
    engine = make_engine(url=demo_db_url)
    query = sa.text(
        "SELECT ut.user_id, COUNT(*) AS n FROM user_track ut JOIN track t ON t.track_id = ut.track_id "
        "WHERE t.danceability IS NOT NULL GROUP BY ut.user_id HAVING n >= 20 ORDER BY n DESC, ut.user_id"
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    await engine.dispose()
    return [int(r[0]) for r in rows]
