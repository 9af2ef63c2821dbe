"""The project's pytest plugin (registered by the root conftest.py): the fixtures every test
folder shares, and the fixture block every model service's tests build from.

- real databases: MariaDB (TEST_MARIADB_URL, default the local server at 127.0.0.1:3306, root,
  no password; each test session creates its own databases and drops them at the end) and
  SQLite, and demo data subsets;
- `model_service_fixtures(...)`: a service's database, temp model root, global model trained
  once, app with its lifespan running, and client, for m1, m2 and m3's conftest.py;
- `settings_maker(...)`: the make_settings(db_url, model_root, **overrides) of a service's tests.

Helpers live in importable modules (tests/*.py, services/<svc>/tests/helpers.py), never in a
conftest.py: a test imports nothing from a conftest.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from musicspace_shared.db.engine import make_engine, make_sessionmaker
from musicspace_shared.db.migrate import upgrade
from tests import credentials
from tests.asgi import asgi_client
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


def settings_maker(settings_cls: type, **fast: Any) -> Callable[..., Any]:
    """make_settings(db_url, model_root, **overrides) for a service's tests: its Settings on
    that database and model root, with the `fast` values (small models, frequent checks)."""

    def make_settings(db_url: str, model_root: Path, **overrides: Any) -> Any:
        return settings_cls(database_url=db_url, model_root=model_root, **(fast | overrides))

    return make_settings


def model_service_fixtures(
    service: str,
    *,
    db_url: str,
    make_settings: Callable[..., Any],
    train: Callable[..., Awaitable[Any]],
) -> tuple[Any, ...]:
    """The fixture block of a model service's tests, for its conftest.py to bind:

        service_db_url, model_root, trained, app, client = model_service_fixtures(...)

    service_db_url: the database fixture named `db_url`; model_root: a temp MODEL_ROOT;
    trained: `train(settings=...)` run once per session; app: musicspace_<service>'s app with
    its lifespan running, built once per session; client: an in-process client of it. Made
    per conftest (not shared session fixtures), so m1's trained model never serves m2's tests.
    """

    @pytest.fixture(scope="session")
    def service_db_url(request: pytest.FixtureRequest) -> str:
        return request.getfixturevalue(db_url)

    @pytest.fixture(scope="session")
    def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
        return tmp_path_factory.mktemp(f"{service}models")

    @pytest.fixture(scope="session")
    async def trained(service_db_url: str, model_root: Path) -> Any:
        """The global model, trained once for the session."""
        return await train(settings=make_settings(service_db_url, model_root))

    @pytest.fixture(scope="session")
    async def app(trained: Any, service_db_url: str, model_root: Path) -> AsyncIterator[FastAPI]:
        create_app = importlib.import_module(f"musicspace_{service}.app").create_app
        application = create_app(make_settings(service_db_url, model_root))
        async with application.router.lifespan_context(application):
            yield application

    @pytest.fixture
    async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
        async with asgi_client(app) as c:
            yield c

    return service_db_url, model_root, trained, app, client
