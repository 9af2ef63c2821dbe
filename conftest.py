"""Fixtures every test folder shares: real databases (MariaDB and SQLite), demo data subsets.

MariaDB comes from TEST_MARIADB_URL (default: the local server at 127.0.0.1:3306, root, no
password); each test session creates its own databases and drops them at the end.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from musicspace_shared.db.engine import make_engine, make_sessionmaker
from musicspace_shared.db.migrate import upgrade
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tests.factories import write_demo_subset

MARIADB_SERVER_URL = os.environ.get("TEST_MARIADB_URL", "mysql+asyncmy://root@127.0.0.1:3306")


def _server_engine() -> AsyncEngine:
    return make_engine(url=MARIADB_SERVER_URL.rstrip("/") + "/")


async def _create_database(name: str) -> None:
    engine = _server_engine()
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    await engine.dispose()


async def _drop_database(name: str) -> None:
    engine = _server_engine()
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
    await engine.dispose()


def new_mariadb_database(prefix: str = "mstest") -> str:
    """Create an empty MariaDB database and return its URL (dropped by the session fixture)."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_create_database(name))
    _CREATED.append(name)
    return MARIADB_SERVER_URL.rstrip("/") + f"/{name}"


_CREATED: list[str] = []


@pytest.fixture(scope="session", autouse=True)
def _drop_created_databases() -> Iterator[None]:
    yield
    for name in _CREATED:
        asyncio.run(_drop_database(name))


@pytest.fixture(scope="session")
def mariadb_url() -> str:
    """An empty, migrated MariaDB database for this test session."""
    url = new_mariadb_database()
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'musicspace.db'}"
    upgrade(url)
    return url


@pytest.fixture(params=["mariadb", "sqlite"])
def any_db_url(request: pytest.FixtureRequest) -> str:
    """Runs a test once on each engine, so the embedded default stays honest."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture(scope="session")
def demo_subset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small, deterministic slice of the demo data: (catalog file, playlists file)."""
    return write_demo_subset(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="session")
def demo_db_url(demo_subset: tuple[Path, Path]) -> str:
    """A migrated MariaDB database holding the demo subset (catalog + playlist users)."""
    from musicspace_cli.importer import import_catalog, import_playlists

    url = new_mariadb_database("msdemo")
    upgrade(url)

    async def load() -> None:
        engine = make_engine(url=url)
        await import_catalog(engine, demo_subset[0])
        await import_playlists(engine, demo_subset[1])
        await engine.dispose()

    asyncio.run(load())
    return url


@pytest.fixture
async def engine(any_db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(url=any_db_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with make_sessionmaker(engine)() as session:
        yield session
