"""Alembic environment: async, driven by the same DATABASE_URL as the services."""

from __future__ import annotations

import asyncio
import time

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import SQLModel

from musicspace_shared.db import tables  # noqa: F401  (registers the tables)
from musicspace_shared.db.engine import is_sqlite, make_engine

config = context.config
target_metadata = SQLModel.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=is_sqlite(connection.engine),  # SQLite alters tables by copy
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


# A server that has just come up (compose's migrate step, a restarted database) may refuse or
# time out the first connections while it already answers pings: the migration keeps trying
# for this long before it fails (each try has the engine's own connect timeout).
CONNECT_PATIENCE_S = 30.0


async def _connect(engine: AsyncEngine) -> AsyncConnection:
    deadline = time.monotonic() + CONNECT_PATIENCE_S
    while True:
        try:
            return await engine.connect()
        except OperationalError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1.0)


async def _run_async() -> None:
    engine = make_engine(url=config.get_main_option("sqlalchemy.url"))
    connection = await _connect(engine)
    try:
        await connection.run_sync(_run)
    finally:
        await connection.close()
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
