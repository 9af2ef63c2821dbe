"""The service skeleton: health, readiness, errors as JSON problems, request ids, metrics, admin."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from musicspace_shared.errors import NotFound
from musicspace_shared.settings import CommonSettings
from musicspace_shared.web import SessionDep, create_service_app, runtime_dependency
from tests.asgi import serving
from tests.credentials import APP_KEY


class Body(BaseModel):
    n: int = Field(ge=1, le=10)


def build_app(database_url: str, tmp_path, **kwargs):
    router = APIRouter(prefix="/api/demo")

    @router.post("/echo")
    async def echo(body: Body, session: SessionDep) -> dict[str, int]:
        return {"n": body.n}

    @router.get("/missing")
    async def missing() -> None:
        raise NotFound("no such thing")

    settings = CommonSettings(
        DATABASE_URL=database_url, MODEL_ROOT=tmp_path, ADMIN_API_KEY="s3cret"
    )
    return create_service_app(
        service="demo", settings=settings, title="demo", version="0", routers=[router], **kwargs
    )


async def call(app, method: str, path: str, **kwargs) -> httpx.Response:
    async with serving(app, headers={}) as client:
        return await client.request(method, path, **kwargs)


async def test_readyz_reports_each_check(sqlite_url, tmp_path) -> None:
    async def model_missing(_app):
        return "model: missing"

    app = build_app(sqlite_url, tmp_path, readiness={"model": model_missing})
    response = await call(app, "GET", "/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "shutdown": "ok",
        "database": "ok",
        "model": "model: missing",
    }
    assert (await call(app, "GET", "/healthz")).status_code == 200


async def test_readyz_is_503_when_the_database_is_unreachable(tmp_path) -> None:
    app = build_app("mysql+asyncmy://root@127.0.0.1:1/nowhere", tmp_path)
    response = await call(app, "GET", "/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] != "ok"


async def test_request_on_a_down_database_is_a_503_with_reason(tmp_path) -> None:
    app = build_app("mysql+asyncmy://root@127.0.0.1:1/nowhere", tmp_path)

    router = APIRouter()

    @router.get("/api/demo/count")
    async def count(session: SessionDep) -> int:
        from sqlalchemy import text

        return (await session.execute(text("SELECT 1"))).scalar_one()

    app.include_router(router)
    response = await call(app, "GET", "/api/demo/count")
    assert response.status_code == 503
    assert "database unavailable" in response.json()["detail"]


async def test_an_exhausted_connection_pool_is_a_503_to_retry(sqlite_url, tmp_path) -> None:
    """At scale a backlog can hold every pooled connection: the pool's timeout is a busy
    database (503, Retry-After), not an internal error (it was a 500)."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    app = build_app(sqlite_url, tmp_path)
    router = APIRouter()

    @router.get("/api/demo/busy")
    async def busy() -> int:
        raise PoolTimeout("QueuePool limit of size 10 overflow 10 reached")

    app.include_router(router)
    response = await call(app, "GET", "/api/demo/busy")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["title"] == "Database busy"


async def test_invalid_body_is_a_422_problem_naming_the_field(sqlite_url, tmp_path) -> None:
    response = await call(build_app(sqlite_url, tmp_path), "POST", "/api/demo/echo", json={"n": 99})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].startswith("body.n:")


async def test_domain_error_renders_its_status(sqlite_url, tmp_path) -> None:
    response = await call(build_app(sqlite_url, tmp_path), "GET", "/api/demo/missing")
    assert response.status_code == 404 and response.json()["detail"] == "no such thing"


async def test_request_id_is_echoed_and_metrics_use_route_templates(sqlite_url, tmp_path) -> None:
    app = build_app(sqlite_url, tmp_path)
    async with serving(app) as client:
        echoed = await client.post(
            "/api/demo/echo", json={"n": 2}, headers={"X-Request-ID": "abc123"}
        )
        metrics = (await client.get("/metrics")).text
    assert echoed.headers["x-request-id"] == "abc123"
    assert (
        'musicspace_http_requests_total{method="POST",route="/api/demo/echo",service="demo",status="200"} 1.0'
        in metrics
    )


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"X-API-Key": "wrong"}, 401),
        ({"X-API-Key": "s3cret x"}, 401),
        ({"X-API-Key": "s3cret  "}, 200),  # the gateway strips it too (RFC 9110 5.5)
        ({"Authorization": f"Bearer {APP_KEY}"}, 403),
        ({"X-API-Key": "s3cret"}, 200),
        ({"Authorization": "Bearer s3cret"}, 200),
    ],
)
async def test_admin_routes_need_the_credential(sqlite_url, tmp_path, headers, status) -> None:
    app = build_app(sqlite_url, tmp_path, model_family="M1")
    response = await call(app, "GET", "/admin/models", headers=headers)
    assert response.status_code == status
    if status == 200:
        assert response.json()["M1"]["user_models"] == 0


async def test_cors_allows_configured_origin_only(sqlite_url, tmp_path) -> None:
    app = build_app(sqlite_url, tmp_path)
    preflight = {"Access-Control-Request-Method": "POST"}
    ok = await call(
        app, "OPTIONS", "/api/demo/echo", headers={"Origin": "http://localhost:3000", **preflight}
    )
    bad = await call(
        app, "OPTIONS", "/api/demo/echo", headers={"Origin": "http://evil.example", **preflight}
    )
    assert ok.headers.get("access-control-allow-origin") == "http://localhost:3000"
    assert "access-control-allow-origin" not in bad.headers


async def test_unknown_route_and_wrong_method_are_problems(sqlite_url, tmp_path) -> None:
    app = build_app(sqlite_url, tmp_path)
    missing = await call(app, "GET", "/api/demo/nowhere")
    wrong_method = await call(app, "GET", "/api/demo/echo")
    assert (missing.status_code, wrong_method.status_code) == (404, 405)
    assert missing.headers["content-type"] == "application/problem+json"
    assert wrong_method.json()["title"] == "Method Not Allowed"


def test_openapi_documents_errors_as_problems(sqlite_url, tmp_path) -> None:
    schema = build_app(sqlite_url, tmp_path).openapi()
    responses = schema["paths"]["/api/demo/echo"]["post"]["responses"]
    assert set(responses["422"]["content"]) == {"application/problem+json"}
    assert "4XX" in responses and "5XX" in responses
    assert "Problem" in schema["components"]["schemas"]


@pytest.mark.parametrize("body", [{"dry_run": "false"}, {"dry_run": 0}, {"older_than_days": "90"}])
async def test_cleanup_body_is_strict_so_a_string_never_turns_off_the_dry_run(
    sqlite_url, tmp_path, body
) -> None:
    app = build_app(sqlite_url, tmp_path, model_family="M1")
    response = await call(
        app, "POST", "/admin/models/cleanup", json=body, headers={"X-API-Key": "s3cret"}
    )
    assert response.status_code == 422, response.text


class DemoRuntime:
    answers = 42


DemoRuntimeDep = Annotated[DemoRuntime, Depends(runtime_dependency(DemoRuntime))]


async def test_the_runtime_a_startup_yields_is_reached_by_a_typed_dependency(
    sqlite_url, tmp_path
) -> None:
    router = APIRouter(prefix="/api/typed")

    @router.get("/answer")
    async def answer(runtime: DemoRuntimeDep) -> int:
        return runtime.answers

    @asynccontextmanager
    async def startup(_app):
        yield DemoRuntime()

    settings = CommonSettings(DATABASE_URL=sqlite_url, MODEL_ROOT=tmp_path, APP_API_KEY=APP_KEY)
    app = create_service_app(
        service="demo",
        settings=settings,
        title="demo",
        version="0",
        routers=[router],
        startup=startup,
    )
    async with serving(app) as client:
        assert (await client.get("/api/typed/answer")).json() == 42
