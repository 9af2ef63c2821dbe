"""Test databases: fresh MariaDB databases (dropped at session end) and demo-data copies.

Import from here (`from tests.databases import demo_database`), never from `conftest`: a
second import of conftest.py would get its own list of databases, which nobody drops.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import sqlalchemy as sa

from musicspace_shared.db.engine import make_engine
from musicspace_shared.db.migrate import upgrade

MARIADB_SERVER_URL = os.environ.get("TEST_MARIADB_URL", "mysql+asyncmy://root@127.0.0.1:3306")
_CREATED: list[str] = []


async def _server_execute(sql: str) -> None:
    engine = make_engine(url=MARIADB_SERVER_URL.rstrip("/") + "/")
    async with engine.begin() as conn:
        await conn.execute(sa.text(sql))
    await engine.dispose()


def new_mariadb_database(prefix: str = "mstest") -> str:
    """Create an empty MariaDB database and return its URL (dropped at the end of the session)."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_server_execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    _CREATED.append(name)
    return MARIADB_SERVER_URL.rstrip("/") + f"/{name}"


def drop_created_databases() -> None:
    while _CREATED:
        asyncio.run(_server_execute(f"DROP DATABASE IF EXISTS `{_CREATED.pop()}`"))


def demo_database(subset: tuple[Path, Path], prefix: str = "msdemo") -> str:
    """A fresh migrated MariaDB database holding a demo subset (catalog + playlist users)."""
    from musicspace_cli.importer import import_catalog, import_playlists

    url = new_mariadb_database(prefix)
    upgrade(url)

    async def load() -> None:
        engine = make_engine(url=url)
        await import_catalog(engine, subset[0])
        await import_playlists(engine, subset[1])
        await engine.dispose()

    asyncio.run(load())
    return url
