"""DELETE /api/users/{id} on MariaDB and SQLite: every row of the user goes, every replica of
every user_state service is asked to forget them, a peer down is a 503 naming it, and a retry
finishes the erasure."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa

from musicspace_enrichment.app import create_app
from musicspace_enrichment.erasure import PeerForget
from musicspace_shared import http as shared_http
from musicspace_shared import registry
from musicspace_shared.db.tables import Interaction, InteractionEvent, ModelRecord
from services.enrichment.tests.helpers import (
    ADMIN_KEY,
    new_track_id,
    new_user_id,
    settings_for,
)
from tests.asgi import serving
from tests.credentials import as_user

# Each user_state service's name and the replica addresses it resolves to (m1 scaled to 2).
REPLICAS = {
    "m1": ["10.0.1.1", "10.0.1.2"],
    "m2": ["10.0.2.1"],
    "m3": ["10.0.3.1"],
    "llm": ["10.0.4.1"],
}
PEER_URLS = {f"{name}_url": f"http://{name}.test:8000" for name in REPLICAS}


class FakeReplicas:
    """Every replica's DELETE /admin/users/{id}; an address in `down` refuses connections."""

    def __init__(self) -> None:
        self.down: set[str] = set()
        self.calls: list[tuple[str, str, str]] = []  # (Host header, address, path)
        self.service_of = {a: name for name, addrs in REPLICAS.items() for a in addrs}

    def handler(self, request: httpx.Request) -> httpx.Response:
        address = request.url.host
        if address in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.headers.get("authorization") != f"Bearer {ADMIN_KEY}":
            return httpx.Response(403, json={"detail": "admin key expected"})
        assert request.method == "DELETE" and request.url.path.startswith("/admin/users/")
        self.calls.append((request.headers["host"], address, request.url.path))
        report = {
            "service": self.service_of[address],
            "instance": f"{address}:1",
            "user_id": int(request.url.path.rsplit("/", 1)[1]),
            "files": [],
            "cache_entries": 1,
            "metric_series": 0,
        }
        return httpx.Response(200, content=json.dumps(report))


@pytest.fixture
def replicas(monkeypatch) -> FakeReplicas:
    async def resolve(host: str, _port: int) -> list[str]:
        return REPLICAS.get(host.removesuffix(".test"), [host])

    monkeypatch.setattr(shared_http, "resolve_addresses", resolve)
    return FakeReplicas()


@pytest.fixture
async def client(any_db_url: str, replicas: FakeReplicas) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(any_db_url, **PEER_URLS)
    app = create_app(settings)
    async with serving(app) as http:
        await app.state.runtime.forget.aclose()
        app.state.runtime.forget = PeerForget(
            settings, transport=httpx.MockTransport(replicas.handler)
        )
        http.app = app  # type: ignore[attr-defined]
        yield http


async def _user_with_everything(client: httpx.AsyncClient) -> tuple[int, list[str]]:
    """A user created over HTTP with a library, an interaction, an event and a model record."""
    user = new_user_id()
    tracks = [new_track_id(), new_track_id()]
    await client.put(f"/api/users/{user}", json={"external_ref": f"ref-{user}"})
    body = {"mode": "merge", "tracks": [{"track_id": t, "playlist_id": "p"} for t in tracks]}
    await client.put(f"/api/users/{user}/library", json=body)
    now = datetime.now(UTC)
    async with client.app.state.engine.begin() as conn:  # type: ignore[attr-defined]
        await conn.execute(
            sa.insert(Interaction).values(
                user_id=user, track_id=tracks[0], play_count=3, updated_at=now
            )
        )
        await conn.execute(
            sa.insert(InteractionEvent).values(
                user_id=user,
                event_id="e1",
                track_id=tracks[0],
                kind="play",
                occurred_at=now,
                received_at=now,
            )
        )
        await conn.execute(
            sa.insert(ModelRecord).values(
                family="M1",
                kind="user_model",
                owner_id=user,
                version="v",
                path="p",
                sha256="s",
                trained_at=now,
            )
        )
    return user, tracks


async def _rows_mentioning(client: httpx.AsyncClient, user: int) -> dict[str, int]:
    """Rows holding the user id, in every table with a user column."""
    checks = {
        "user": "SELECT COUNT(*) FROM `user` WHERE id = :u",  # backticks: SQLite takes them too
        "user_track": "SELECT COUNT(*) FROM user_track WHERE user_id = :u",
        "interaction": "SELECT COUNT(*) FROM interaction WHERE user_id = :u",
        "interaction_event": "SELECT COUNT(*) FROM interaction_event WHERE user_id = :u",
        "model_record": "SELECT COUNT(*) FROM model_record WHERE owner_id = :u",
    }
    found = {}
    async with client.app.state.engine.connect() as conn:  # type: ignore[attr-defined]
        for table, sql in checks.items():
            found[table] = int((await conn.execute(sa.text(sql), {"u": user})).scalar_one())
    return {table: n for table, n in found.items() if n}


async def test_delete_removes_every_row_and_asks_every_replica(client, replicas) -> None:
    user, _tracks = await _user_with_everything(client)
    other, _ = await _user_with_everything(client)
    response = await client.delete(f"/api/users/{user}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["existed"] is True
    expected = {"user": 1, "user_track": 2, "interaction": 1, "interaction_event": 1}
    assert {k: v for k, v in body["rows"].items() if v} == expected | {"model_record": 1}
    assert await _rows_mentioning(client, user) == {}
    assert len(await _rows_mentioning(client, other)) == 5  # the other user is untouched
    called = sorted(address for _host, address, _path in replicas.calls)
    assert called == sorted(a for addrs in REPLICAS.values() for a in addrs)
    assert {host for host, _, _ in replicas.calls} == {f"{n}.test:8000" for n in REPLICAS}
    assert sorted(r["instance"] for r in body["services"]) == [f"{a}:1" for a in called]
    assert {s.name for s in registry.with_user_state()} == set(REPLICAS)


async def test_a_second_delete_is_200_with_nothing_removed_and_asks_again(client, replicas) -> None:
    user, _ = await _user_with_everything(client)
    await client.delete(f"/api/users/{user}")
    again = await client.delete(f"/api/users/{user}")
    assert again.status_code == 200
    assert again.json()["existed"] is False and set(again.json()["rows"].values()) == {0}
    assert len(replicas.calls) == 2 * 5  # every replica, both times
    never = await client.delete(f"/api/users/{new_user_id()}")
    assert never.status_code == 200 and never.json()["existed"] is False


async def test_a_replica_down_is_503_naming_it_and_a_retry_finishes(client, replicas) -> None:
    user, _ = await _user_with_everything(client)
    replicas.down = {"10.0.1.2"}
    failed = await client.delete(f"/api/users/{user}")
    assert failed.status_code == 503, failed.text
    problem = failed.json()
    assert "m1" in problem["detail"] and problem["unavailable"][0].startswith("m1 at 10.0.1.2")
    assert problem["removed"]["rows"]["user"] == 1  # the rows are gone already
    assert await _rows_mentioning(client, user) == {}
    replicas.down = set()
    retried = await client.delete(f"/api/users/{user}")
    assert retried.status_code == 200 and len(retried.json()["services"]) == 5


async def test_a_user_token_may_erase_its_own_user_only(client) -> None:
    user, _ = await _user_with_everything(client)
    assert (await client.delete(f"/api/users/{user}", headers=as_user(user + 1))).status_code == 403
    assert await _rows_mentioning(client, user) != {}
    own = await client.delete(f"/api/users/{user}", headers=as_user(user))
    assert own.status_code == 200 and own.json()["existed"] is True


async def test_without_an_admin_key_the_erasure_says_it_cannot_reach_the_peers(
    any_db_url,
) -> None:
    settings = settings_for(any_db_url, admin_api_key=None, **PEER_URLS)
    forget = PeerForget(settings, transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    reports, failures = await forget.forget(5)
    assert reports == [] and "admin key" in failures[0]
    await forget.aclose()


@pytest.mark.parametrize("raw", ["0", "-1", "+5", "1.0", "abc"])
async def test_bad_user_ids_are_422(client, raw) -> None:
    assert (await client.delete(f"/api/users/{raw}")).status_code == 422
