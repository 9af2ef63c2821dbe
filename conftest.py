"""Fixtures every test folder shares: real databases (MariaDB and SQLite), demo data subsets.

MariaDB comes from TEST_MARIADB_URL (default: the local server at 127.0.0.1:3306, root, no
password); each test session creates its own databases and drops them at the end.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from musicspace_shared.db.engine import make_engine, make_sessionmaker
from musicspace_shared.db.migrate import upgrade
from tests import credentials
from tests.databases import demo_database, drop_created_databases, new_mariadb_database
from tests.factories import write_demo_subset

# Every service's settings (in-process and child processes) know the test credentials.
os.environ.update(credentials.ENV)


@pytest.fixture(scope="session", autouse=True)
def _drop_created_databases() -> Iterator[None]:
    yield
    drop_created_databases()


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
    return demo_database(demo_subset)


@pytest.fixture
async def engine(any_db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(url=any_db_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with make_sessionmaker(engine)() as session:
        yield session
