"""MariaDB stopped under load: requests fail fast with 503, then recover with no restart."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import sqlalchemy as sa
from fastapi import APIRouter

from musicspace_shared.db.engine import make_engine
from musicspace_shared.db.migrate import upgrade
from musicspace_shared.settings import CommonSettings
from musicspace_shared.web import SessionDep, create_service_app
from tests.asgi import serving
from tests.private_mariadb import PrivateMariaDB, available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not available(), reason="needs MariaDB binaries"),
]


@pytest.fixture
def private_mariadb(tmp_path):
    server = PrivateMariaDB(tmp_path).install()
    server.start()
    server.execute("CREATE DATABASE outage")
    yield server
    server.stop()


def outage_app(url: str):
    router = APIRouter()

    @router.get("/api/probe/tracks")
    async def tracks(session: SessionDep) -> int:
        return (await session.execute(sa.text("SELECT COUNT(*) FROM track"))).scalar_one()

    settings = CommonSettings(DATABASE_URL=url, DB_CONNECT_TIMEOUT_S=2)
    return create_service_app(
        service="probe", settings=settings, title="probe", version="0", routers=[router]
    )


async def burst(client: httpx.AsyncClient, n: int = 16) -> list[tuple[int, float]]:
    async def one() -> tuple[int, float]:
        started = time.perf_counter()
        response = await client.get("/api/probe/tracks")
        return response.status_code, time.perf_counter() - started

    return await asyncio.gather(*(one() for _ in range(n)))


async def test_requests_fail_fast_with_503_while_the_database_is_down_and_recover(
    private_mariadb,
) -> None:
    url = private_mariadb.server_url + "/outage"
    await asyncio.to_thread(upgrade, url)
    app = outage_app(url)
    async with serving(app) as client:
        assert {status for status, _ in await burst(client)} == {200}

        private_mariadb.stop()
        down = await burst(client)
        assert {status for status, _ in down} == {503}
        assert max(elapsed for _, elapsed in down) < 10  # fails fast instead of hanging
        problem = (await client.get("/api/probe/tracks")).json()
        assert "database" in problem["detail"].lower()
        assert (await client.get("/readyz")).status_code == 503

        await asyncio.to_thread(private_mariadb.start)
        after = await burst(client)
        assert {status for status, _ in after} == {200}
        assert (await client.get("/readyz")).status_code == 200


async def test_a_migration_waits_for_a_database_that_comes_up_late(private_mariadb) -> None:
    # compose's migrate step may start while the server still refuses connections.
    private_mariadb.stop()
    migration = asyncio.create_task(
        asyncio.to_thread(upgrade, private_mariadb.server_url + "/outage")
    )
    await asyncio.sleep(3)
    assert not migration.done()  # still trying, not failed
    await asyncio.to_thread(private_mariadb.start)
    await asyncio.wait_for(migration, 60)
    engine = make_engine(url=private_mariadb.server_url + "/outage")
    async with engine.connect() as conn:
        assert (await conn.execute(sa.text("SELECT COUNT(*) FROM track"))).scalar_one() == 0
    await engine.dispose()
