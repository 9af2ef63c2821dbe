"""Enrichment test fixtures: one MariaDB database per module holding the demo subset."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from musicspace_shared.db.engine import make_engine
from tests.databases import demo_database

from .helpers import reset_enrichment


async def _drop(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    engine = make_engine(url=url.rsplit("/", 1)[0] + "/")
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
    await engine.dispose()


@pytest.fixture(scope="module")
def enrich_db_url(demo_subset: tuple[Path, Path]) -> Iterator[str]:
    """This module's own database (tests here mutate data), dropped when the module ends."""
    url = demo_database(demo_subset, "msenrich")
    yield url
    asyncio.run(_drop(url))


@pytest.fixture
async def db(enrich_db_url: str) -> AsyncIterator[AsyncEngine]:
    """The module's database, reset before the test."""
    engine = make_engine(url=enrich_db_url)
    await reset_enrichment(engine)
    yield engine
    await engine.dispose()
