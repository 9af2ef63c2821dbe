"""Serving never stalls while indexes refresh: through the real Traefik, with its health checks.

Before issue 15, a sync after a fresh import re-read and compared every track on llm's event
loop for seconds; Traefik's health check then dropped llm and searches answered 503. Here a
fresh import is simulated (every track's updated_at moves to now), sync requests are sent
back to back while searches and recommendations run, and not one request may fail.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import sqlalchemy as sa

from musicspace_shared.db.engine import make_engine
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.mariadb]

CLIENTS = 4
REQUESTS_PER_CLIENT = 25


async def _touch_every_track(url: str) -> None:
    engine = make_engine(url=url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("UPDATE track SET updated_at = CURRENT_TIMESTAMP(6)"))
    finally:
        await engine.dispose()


def _last_run(stack: Stack) -> int:
    status = httpx.get(
        f"http://127.0.0.1:{stack.ports['llm']}/api/llm/index/status", headers=stack.app, timeout=10
    )
    assert status.status_code == 200, status.text
    return int(status.json()["last_sync"].get("run", 0))


def test_search_and_recommend_never_fail_while_syncs_run_back_to_back(stack: Stack) -> None:
    for service in ("llm", "m1", "m3"):
        stack.require(service)
    admin = {"Authorization": f"Bearer {stack.admin_key}"}
    runs_before = _last_run(stack)
    asyncio.run(_touch_every_track(stack.env["DATABASE_URL"]))
    stop = threading.Event()
    sync_answers: list[int] = []

    def ask_for_syncs() -> None:
        with stack.client() as client:
            while not stop.is_set():
                sync_answers.append(
                    client.post("/api/llm/index/sync", headers=admin, timeout=10).status_code
                )
                stop.wait(0.1)

    deadline = time.monotonic() + 120

    def two_syncs_ran() -> bool:
        return _last_run(stack) >= runs_before + 2 or time.monotonic() > deadline

    def serve(client_no: int) -> list[tuple[str, int]]:
        answers = []
        with stack.client(headers=stack.app) as client:
            # At least REQUESTS_PER_CLIENT each, and on until two syncs have run under the load
            # (how many fit in a fixed number of requests depends on the machine's speed).
            for i in itertools.count():
                if i >= REQUESTS_PER_CLIENT and two_syncs_ran():
                    break
                query = f"energetic rock for the gym {client_no}-{i}"
                answers.append(
                    (
                        "search",
                        client.post(
                            "/api/llm/search", json={"query": query, "limit": 5}
                        ).status_code,
                    )
                )
                service = ("m1", "m3")[i % 2]
                answers.append(
                    (
                        service,
                        client.post(
                            f"/api/{service}/recommend", json={"user_id": stack.user_id, "limit": 5}
                        ).status_code,
                    )
                )
        return answers

    syncer = threading.Thread(target=ask_for_syncs, daemon=True)
    syncer.start()
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = [a for part in pool.map(serve, range(CLIENTS)) for a in part]
    finally:
        stop.set()
        syncer.join(30)
    failures = [(route, status) for route, status in answers if status != 200]
    assert failures == [], f"{len(failures)} of {len(answers)} requests failed: {failures[:10]}"
    assert sync_answers and set(sync_answers) == {202}, sync_answers
    assert _last_run(stack) >= runs_before + 2  # syncs really ran, one after the other
