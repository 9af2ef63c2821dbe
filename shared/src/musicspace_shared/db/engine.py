"""The async engine: one DATABASE_URL picks MariaDB/MySQL (asyncmy) or SQLite (aiosqlite)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from musicspace_shared.settings import CommonSettings


def normalise_url(url: str) -> str:
    """Accept plain mysql:// / mariadb:// / sqlite:// URLs and add the async driver."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend in ("mysql", "mariadb") and parsed.drivername in ("mysql", "mariadb"):
        parsed = parsed.set(drivername="mysql+asyncmy")
    elif backend == "sqlite" and parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    if parsed.get_backend_name() in ("mysql", "mariadb") and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url_or_engine: str | AsyncEngine | sa.Engine) -> bool:
    if isinstance(url_or_engine, str):
        return make_url(url_or_engine).get_backend_name() == "sqlite"
    return url_or_engine.dialect.name == "sqlite"


def make_engine(settings: CommonSettings | None = None, *, url: str | None = None) -> AsyncEngine:
    """Build the process-wide engine; pre-ping and recycle so a DB restart heals by itself."""
    settings = settings or CommonSettings()
    url = normalise_url(url or settings.database_url)
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        pool_pre_ping=True,
        pool_recycle=settings.db_pool_recycle_s,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_timeout=settings.db_connect_timeout_s,
        connect_args={"connect_timeout": max(1, int(settings.db_connect_timeout_s))},
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    # WAL lets readers run beside the one writer; busy_timeout waits instead of failing.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def session_scope(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One session per request (web.py's handlers turn a lost database into a 503)."""
    async with maker() as session:
        yield session


@asynccontextmanager
async def standalone_session(settings: CommonSettings) -> AsyncIterator[AsyncSession]:
    """A session on an engine of its own, disposed afterwards (worker processes, tools)."""
    engine = make_engine(settings)
    try:
        async with make_sessionmaker(engine)() as session:
            yield session
    finally:
        await engine.dispose()


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))
