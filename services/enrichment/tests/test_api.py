"""The routes in-process: credentials, 404, peers down reported per step, the full flow with fake peers."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa

from musicspace_enrichment.app import create_app
from musicspace_enrichment.clients import build_peers
from musicspace_enrichment.settings import Settings
from services.enrichment.tests.fakes import FakeM2, FakePeers
from tests.asgi import asgi_client, serving
from tests.credentials import as_user
from tests.processes import free_port

KEY = "test-admin-key"
ADMIN = {"Authorization": f"Bearer {KEY}"}


def _settings(url: str) -> Settings:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there: every peer is down
    return Settings(
        database_url=url,
        admin_api_key=KEY,
        http_retries=0,
        resume_jobs=False,
        m1_url=dead,
        m2_url=dead,
        m3_url=dead,
        llm_url=dead,
        item_retry_delay_s=0.0,
    )


@pytest.fixture
async def client(db, enrich_db_url) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(_settings(enrich_db_url))
    async with serving(app) as http:
        http.app = app  # type: ignore[attr-defined]
        yield http


def _use_fake_peers(client: httpx.AsyncClient) -> FakePeers:
    fake = FakePeers(admin_key=KEY)
    app = client.app  # type: ignore[attr-defined]
    app.state.runtime.peers = build_peers(
        app.state.settings, transport=httpx.MockTransport(fake.handler)
    )
    return fake


async def _user_with_lacking(client: httpx.AsyncClient) -> int:
    async with client.app.state.engine.connect() as conn:  # type: ignore[attr-defined]
        return (
            await conn.execute(
                sa.text(
                    "SELECT ut.user_id FROM user_track ut JOIN track t ON t.track_id = ut.track_id "
                    "WHERE t.features_source IS NULL GROUP BY ut.user_id ORDER BY ut.user_id LIMIT 1"
                )
            )
        ).scalar_one()


@pytest.mark.parametrize(
    ("method", "route"),
    [("POST", "/api/init-models"), ("POST", "/api/enrich-all"), ("GET", "/api/enrich-status")],
)
async def test_routes_without_or_with_an_unknown_credential_return_401(client, method, route):
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}):
        async with asgi_client(client.app, headers=headers) as other:
            response = await other.request(method, route, json={"user_id": 1})
        assert response.status_code == 401, headers


async def test_enrich_all_needs_the_admin_key(client):
    app_credential = await client.post("/api/enrich-all")
    user_token = await client.post("/api/enrich-all", headers=as_user(1))
    assert app_credential.status_code == 403 and user_token.status_code == 403


async def test_init_models_takes_the_app_credential_or_the_users_own_token(client):
    app_credential = await client.post("/api/init-models", json={"user_id": 987654321})
    other_user = await client.post(
        "/api/init-models", json={"user_id": 987654321}, headers=as_user(5)
    )
    assert app_credential.status_code == 404, "the app credential acts for any user"
    assert other_user.status_code == 403


async def test_enrich_status_shows_the_worker_to_the_admin_key_only(client):
    app = client.app  # type: ignore[attr-defined]
    await app.state.runtime.bulk.start()
    as_app = (await client.get("/api/enrich-status")).json()
    as_admin = (await client.get("/api/enrich-status", headers=ADMIN)).json()
    assert as_admin["owner"] and str(os.getpid()) in as_admin["owner"]
    assert as_app["owner"] is None and as_app["last_error"] is None
    assert as_app["job_id"] == as_admin["job_id"]


async def test_init_models_unknown_user_returns_404(client):
    response = await client.post("/api/init-models", json={"user_id": 987654321}, headers=ADMIN)
    assert response.status_code == 404
    assert "987654321" in response.json()["detail"]


async def test_init_models_invalid_user_id_returns_422(client):
    response = await client.post("/api/init-models", json={"user_id": -3}, headers=ADMIN)
    assert response.status_code == 422


async def test_init_models_with_every_peer_down_reports_each_step_not_500(client):
    user_id = await _user_with_lacking(client)
    response = await client.post("/api/init-models", json={"user_id": user_id}, headers=ADMIN)
    assert response.status_code == 200
    body = response.json()
    steps = {s["name"]: s["status"] for s in body["steps"]}
    assert steps == {
        "enrich": "unavailable",
        "m1": "unavailable",
        "m2_svm": "unavailable",
        "m3": "unavailable",
    }
    assert body["ok"] is False


async def test_init_models_enriches_trains_and_repeating_does_no_duplicate_work(client):
    fake = _use_fake_peers(client)
    user_id = await _user_with_lacking(client)
    first = (await client.post("/api/init-models", json={"user_id": user_id}, headers=ADMIN)).json()
    steps = {s["name"]: s for s in first["steps"]}
    assert first["ok"] is True
    assert steps["enrich"]["status"] == "ok" and steps["enrich"]["result"]["enriched"] > 0
    assert [steps[n]["status"] for n in ("m1", "m2_svm", "m3")] == ["ok", "ok", "ok"]
    assert steps["llm_sync"]["status"] == "ok"  # the index is told, with the admin credential
    assert fake.calls.count("POST /api/m1/train") == 1
    predicted = fake.m2.items_seen

    second = (
        await client.post("/api/init-models", json={"user_id": user_id}, headers=ADMIN)
    ).json()
    again = {s["name"]: s for s in second["steps"]}
    assert again["enrich"]["status"] == "skipped"
    assert again["m1"]["status"] == "skipped"
    assert fake.m2.items_seen == predicted  # nothing predicted twice
    assert fake.calls.count("POST /api/m1/train") == 1  # m1 not retrained: nothing changed
    assert fake.unknown == [], "enrichment called a route no service has"


async def test_enrich_status_and_enrich_all_starts_then_returns_the_active_job(client):
    app = client.app  # type: ignore[attr-defined]
    idle = await client.get("/api/enrich-status")
    assert idle.status_code == 200 and idle.json()["state"] == "idle"
    fake = FakeM2()
    from musicspace_enrichment.clients import M2Client
    from musicspace_shared.http import ServiceClient

    app.state.runtime.bulk.m2 = M2Client(
        ServiceClient("m2", "http://m2.test", retries=0, transport=fake.transport())
    )
    app.state.runtime.bulk.settings = app.state.settings.model_copy(
        update={"pause_between_batches_s": 0.2, "batch_size": 10}
    )
    started = await client.post("/api/enrich-all", headers=ADMIN)
    assert started.status_code == 202 and started.json()["created"] is True
    again = await client.post("/api/enrich-all", headers={"Authorization": f"Bearer {KEY}"})
    assert again.status_code == 200
    assert again.json()["job_id"] == started.json()["job_id"] and again.json()["created"] is False
    status = (await client.get("/api/enrich-status")).json()
    assert status["job_id"] == started.json()["job_id"]
    assert status["state"] in ("running", "waiting", "succeeded")
    assert status["total"] > 0


async def test_enrich_status_shows_no_host_or_pid_but_the_admin_detail_does(client):
    app = client.app  # type: ignore[attr-defined]
    async with app.state.engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO job (kind, state, total, done, failed, owner, started_at, updated_at) "
                "VALUES ('enrich_all', 'succeeded', 0, 0, 0, 'db-host-7:4242:abcd', "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    public = await client.get("/api/enrich-status")
    assert public.status_code == 200 and public.json()["owner"] is None
    assert "db-host-7" not in public.text and "4242" not in public.text
    # The app credential (the client's) is known but not the admin's.
    assert (await client.get("/admin/enrich-status")).status_code == 403
    detail = await client.get("/admin/enrich-status", headers=ADMIN)
    assert detail.status_code == 200 and detail.json()["owner"] == "db-host-7:4242:abcd"


async def test_enrich_all_with_nothing_lacking_creates_no_job_and_asks_for_no_sync(client):
    app = client.app  # type: ignore[attr-defined]
    fake = _use_fake_peers(client)
    async with app.state.engine.begin() as conn:
        await conn.execute(
            sa.text(
                "UPDATE track SET danceability = 0.5, features_source = 'predicted' "
                "WHERE features_source IS NULL"
            )
        )
        jobs_before = (await conn.execute(sa.text("SELECT COUNT(*) FROM job"))).scalar_one()
    answers = [await client.post("/api/enrich-all", headers=ADMIN) for _ in range(5)]
    assert {a.status_code for a in answers} == {200}
    assert all(a.json()["created"] is False for a in answers)
    await app.state.runtime.bulk.wait()
    async with app.state.engine.connect() as conn:
        assert (await conn.execute(sa.text("SELECT COUNT(*) FROM job"))).scalar_one() == jobs_before
    assert "POST /api/llm/index/sync" not in fake.calls


def test_llm_sync_client_has_a_short_timeout_and_no_retries():
    peers = build_peers(Settings(llm_url="http://llm.test"))
    assert peers.llm.retries == 0
    assert peers.llm._client.timeout.read <= 5.0
