"""User-model cleanup (issue 8, model operations) on the real m1, m2 and m3 processes.

The admin route: usage counts the user's model; a dry run lists a model unused for 200 days
and removes nothing; the real run removes it and the user is still served (by a fallback, the
global model, or m2's retrained SVM). The race: the model is deleted again and again while
clients keep asking for that user's recommendations; every answer must be 200 or 404, never
a 5xx.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from musicspace_shared import model_ops
from musicspace_shared.db.engine import make_engine
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.mariadb]

OLD_S = 200 * 86_400


async def _other_user(url: str, not_this: int) -> int:
    """A demo user with at least 10 PMS tracks other than the one the gateway tests use."""
    engine = make_engine(url=url)
    try:
        async with engine.connect() as conn:
            return int(
                (
                    await conn.execute(
                        sa.text(
                            "SELECT user_id FROM user_track WHERE user_id <> :u GROUP BY user_id "
                            "HAVING COUNT(*) >= 10 ORDER BY user_id DESC LIMIT 1"
                        ),
                        {"u": not_this},
                    )
                ).scalar_one()
            )
    finally:
        await engine.dispose()


def _age(paths: list[Path], seconds: float) -> None:
    """Set every file of a user-model entry (folders included, recursively) back in time."""
    stamp = time.time() - seconds
    for path in paths:
        for item in [path, *(path.rglob("*") if path.is_dir() else [])]:
            os.utime(item, (stamp, stamp))


def _entries(root: Path, family: str, user_id: int) -> list[model_ops.UserModelEntry]:
    return [e for e in model_ops.user_model_entries(root / family, family) if e.user_id == user_id]


SERVICES = [("m1", "M1", "/api/m1/train"), ("m2", "M2", None), ("m3", "M3", "/api/m3/train")]


@dataclass(frozen=True)
class Trained:
    """A service holding a freshly trained personal model for `user_id`."""

    service: str
    family: str
    user_id: int
    url: str
    root: Path

    def recommend(self, client: httpx.Client) -> httpx.Response:
        return client.post(
            f"/api/{self.service}/recommend", json={"user_id": self.user_id, "limit": 10}
        )


@pytest.fixture(params=SERVICES, ids=[service for service, _, _ in SERVICES])
def trained(stack: Stack, request: pytest.FixtureRequest) -> Trained:
    service, family, train = request.param
    stack.require(service)
    user_id = asyncio.run(_other_user(stack.env["DATABASE_URL"], stack.user_id))
    case = Trained(
        service, family, user_id, stack.services[service].url, Path(stack.env["MODEL_ROOT"])
    )
    with httpx.Client(base_url=case.url, timeout=120, headers=stack.app) as client:
        if train is not None:
            assert client.post(train, json={"user_id": user_id}).status_code == 200
        # m2 trains its per-user SVM on demand, inside recommend.
        response = case.recommend(client)
        assert response.status_code == 200, response.text
    return case


def test_cleanup_route_removes_only_unused_models_and_the_user_is_still_served(
    stack: Stack, trained: Trained
) -> None:
    family, user_id = trained.family, trained.user_id
    admin = stack.admin
    with httpx.Client(base_url=trained.url, timeout=120, headers=stack.app) as client:
        entries = _entries(trained.root, family, user_id)
        assert entries, f"no {family} user model for user {user_id}"
        usage = client.get("/admin/models", headers=admin).json()[family]
        assert usage["user_models"] >= 1 and usage["user_model_bytes"] > 0
        assert client.post("/admin/models/cleanup", json={"dry_run": False}).status_code == 403

        for entry in entries:
            _age(entry.paths, OLD_S)
        dry = client.post("/admin/models/cleanup", json={"older_than_days": 90}, headers=admin)
        assert dry.status_code == 200 and dry.json()["dry_run"] is True
        assert user_id in {r["user_id"] for r in dry.json()["removed"]}
        assert all(p.exists() for e in entries for p in e.paths), "a dry run removed files"

        done = client.post(
            "/admin/models/cleanup", json={"older_than_days": 90, "dry_run": False}, headers=admin
        )
        assert done.status_code == 200, done.text
        assert [r["family"] for r in done.json()["removed"] if r["user_id"] == user_id] == [
            family
        ] * len(entries)
        assert not any(p.exists() for e in entries for p in e.paths)
        after = trained.recommend(client)
        assert after.status_code == 200, after.text


def test_removal_during_recommend_never_fails_a_request(stack: Stack, trained: Trained) -> None:
    """The cleanup's own removal (model_ops.cleanup, what the route runs) with a clock far
    ahead, so it deletes the model that the concurrent requests are using and re-marking."""
    statuses: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=trained.url, timeout=120, headers=stack.app) as own:
            while not stop.is_set():
                statuses.append(trained.recommend(own).status_code)

    removed = 0
    future = datetime.now(UTC) + timedelta(days=365)
    with ThreadPoolExecutor(max_workers=4) as pool:
        workers = [pool.submit(hammer) for _ in range(4)]
        try:
            for _ in range(20):
                result = model_ops.cleanup(
                    trained.root, dry_run=False, families=(trained.family,), now=future
                )
                removed += sum(1 for r in result["removed"] if r["user_id"] == trained.user_id)
                time.sleep(0.05)
        finally:
            stop.set()
            for worker in workers:
                worker.result()
    assert removed >= 1
    assert statuses, "no recommend request completed during the removals"
    assert set(statuses) <= {200, 404}, sorted(set(statuses))
