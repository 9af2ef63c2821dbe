"""Enrichment test fixtures: one MariaDB database per module holding the demo subset."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import new_mariadb_database
from musicspace_shared.db.engine import make_engine
from musicspace_shared.db.migrate import upgrade


def demo_database(demo_subset: tuple[Path, Path], prefix: str = "msenrich") -> str:
    """A fresh migrated MariaDB database with the demo subset imported (this module's own)."""
    from musicspace_cli.importer import import_catalog, import_playlists

    url = new_mariadb_database(prefix)
    upgrade(url)

    async def load() -> None:
        engine = make_engine(url=url)
        await import_catalog(engine, demo_subset[0])
        await import_playlists(engine, demo_subset[1])
        await engine.dispose()

    asyncio.run(load())
    return url


async def reset_enrichment(engine: AsyncEngine) -> None:
    """Undo every prediction and job, so each test starts from the imported state."""
    async with engine.begin() as conn:
        await conn.execute(sa.text("DELETE FROM job_item_failure"))
        await conn.execute(sa.text("DELETE FROM job"))
        await conn.execute(sa.text(
            "UPDATE track SET danceability=NULL, energy=NULL, valence=NULL, acousticness=NULL, "
            "instrumentalness=NULL, liveness=NULL, speechiness=NULL, tempo=NULL, loudness=NULL, "
            "features_source=NULL, external_metadata=NULL WHERE features_source='predicted'"
        ))


@pytest.fixture(scope="module")
def enrich_db_url(demo_subset: tuple[Path, Path]) -> str:
    return demo_database(demo_subset)


@pytest.fixture
async def db(enrich_db_url: str) -> AsyncIterator[AsyncEngine]:
    """The module's database, reset before the test."""
    engine = make_engine(url=enrich_db_url)
    await reset_enrichment(engine)
    yield engine
    await engine.dispose()
