"""The service skeleton: app factory, health, metrics, request ids, CORS, error rendering."""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from http import HTTPStatus
from typing import Annotated, Any

import anyio.lowlevel
from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from musicspace_shared import heap
from musicspace_shared.admin import admin_router
from musicspace_shared.db.engine import make_engine, make_sessionmaker, ping, session_scope
from musicspace_shared.errors import DomainError
from musicspace_shared.health import Degraded, shutdown_check
from musicspace_shared.logs import configure_logging, log_fields, request_id_var
from musicspace_shared.metrics import ServiceMetrics
from musicspace_shared.settings import CommonSettings

logger = logging.getLogger("musicspace.web")


ReadinessCheck = Callable[[FastAPI], Awaitable[str | None]]
"""Returns None when ready, Degraded(note) when ready with a caveat, or a reason when not."""

Startup = Callable[[FastAPI], Any]
"""Called in lifespan after the DB engine exists; may return an async context manager."""


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"status": status, "title": title, "detail": detail, **extra}
    return JSONResponse(
        jsonable_encoder(body), status_code=status, media_type="application/problem+json"
    )


_REQUEST_ID_PREFIX = secrets.token_hex(6)
_request_numbers = itertools.count()


def _new_request_id() -> str:
    """Unique per process and run (a random prefix and a counter), without a syscall per
    request as uuid4 makes (about 3% of m3's busy CPU in a recommend profile)."""
    return f"{_REQUEST_ID_PREFIX}{next(_request_numbers):010x}"


class RequestContextMiddleware:
    """Request id in/out, JSON access log, request metrics keyed by route template."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")[:64]
        request_id = incoming if incoming.isprintable() and incoming else _new_request_id()
        token = request_id_var.set(request_id)
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            method = scope["method"]
            self.metrics.requests.labels(self.metrics.service, template, method, str(status)).inc()
            self.metrics.duration.labels(self.metrics.service, template, method).observe(elapsed)
            if template not in ("/healthz", "/readyz", "/metrics") and logger.isEnabledFor(
                logging.INFO
            ):
                logger.info(
                    "request",
                    extra=log_fields(
                        method=method,
                        route=template,
                        path=scope["path"],
                        status=status,
                        ms=round(elapsed * 1000, 2),
                    ),
                )
            request_id_var.reset(token)


def create_service_app(
    *,
    service: str,
    settings: CommonSettings,
    title: str,
    version: str,
    routers: list[Any],
    startup: Startup | None = None,
    readiness: dict[str, ReadinessCheck] | None = None,
    description: str = "",
    model_family: str | None = None,
) -> FastAPI:
    """Build a MusicSpace service. Nothing heavy happens here: the lifespan builds resources.

    model_family ("M1", "M2", "M3") mounts the admin model routes (usage, cleanup).
    """
    configure_logging(service, settings.log_level)
    metrics = ServiceMetrics(service)
    checks: dict[str, ReadinessCheck] = {
        "shutdown": shutdown_check,
        "database": _database_ready,
        **(readiness or {}),
    }

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Load anyio's asyncio backend now, not inside the first outgoing call: httpx (httpcore)
        # imports it lazily, which cost ~50 ms in the first request or job of a process.
        await anyio.lowlevel.checkpoint()
        engine = make_engine(settings)
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        async with AsyncExitStack() as stack:
            if startup is not None:
                result = startup(app)
                if hasattr(result, "__aenter__"):
                    await stack.enter_async_context(result)
                elif hasattr(result, "__await__"):
                    await result
            heap.settle()
            heap.watch(metrics)
            resettle = asyncio.create_task(heap.resettle_every(settings.heap_resettle_s))
            stack.callback(resettle.cancel)
            logger.info("started", extra=log_fields(version=version))
            yield
        await engine.dispose()

    app = FastAPI(title=title, version=version, description=description, lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.service = service
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Content-Type", "Authorization", "X-API-Key", "X-Request-ID"],
        expose_headers=["X-Request-ID"],
    )
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    _install_error_handlers(app)
    _install_ops_routes(app, checks, metrics)
    _document_problems(app)
    for router in routers:
        app.include_router(router)
    if model_family is not None:
        app.include_router(admin_router(model_family))
    return app


PROBLEM_SCHEMA = {
    "title": "Problem",
    "type": "object",
    "description": "An error (RFC 9457 problem details)",
    "required": ["status", "title", "detail"],
    "properties": {
        "status": {"type": "integer"},
        "title": {"type": "string"},
        "detail": {"type": "string"},
    },
    "additionalProperties": True,
}


def _document_problems(app: FastAPI) -> None:
    """Document what the handlers really send: every error is application/problem+json.

    FastAPI's generated 422 says application/json with its own schema; clients (and
    schemathesis) should see the Problem body instead, under each operation's 4xx/5xx.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        problem_response = {
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            }
        }
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.setdefault("responses", {})
                if "422" in responses:
                    responses["422"] = {"description": "Invalid input", **problem_response}
                responses.setdefault("4XX", {"description": "Client error", **problem_response})
                responses.setdefault(
                    "5XX", {"description": "A dependency is unavailable", **problem_response}
                )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _database_ready(app: FastAPI) -> str | None:
    try:
        await ping(app.state.engine)
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return f"database: {type(exc).__name__}"
    return None


def _install_ops_routes(
    app: FastAPI, checks: dict[str, ReadinessCheck], metrics: ServiceMetrics
) -> None:
    @app.get("/healthz", tags=["ops"], summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": metrics.service}

    @app.get(
        "/readyz",
        tags=["ops"],
        summary="Readiness: DB reachable and models loaded",
        responses={
            503: {
                "description": "Not ready: the failing checks",
                "content": {"application/json": {}},
            }
        },
    )
    async def readyz() -> JSONResponse:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                reason = await check(app)
            except Exception as exc:  # noqa: BLE001
                reason = f"{type(exc).__name__}: {exc}"
            results[name] = (
                f"degraded: {reason}" if isinstance(reason, Degraded) else reason or "ok"
            )
        failing = {k: v for k, v in results.items() if v != "ok" and not v.startswith("degraded: ")}
        status = 503 if failing else 200
        body = {
            "status": "ready" if not failing else "not ready",
            "service": metrics.service,
            "checks": results,
        }
        return JSONResponse(body, status_code=status)

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", response_class=Response)
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        return problem(exc.status, exc.title, exc.detail, **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = (
            HTTPStatus(exc.status_code).phrase
            if exc.status_code in HTTPStatus._value2member_map_
            else "Error"
        )
        return problem(exc.status_code, title, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": list(err.get("loc", ())),
                "msg": err.get("msg", ""),
                "type": err.get("type", ""),
            }
            for err in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(part) for part in first["loc"])
        return problem(422, "Invalid input", f"{where}: {first['msg']}", errors=errors)

    @app.exception_handler(OperationalError)
    async def _db_down(_request: Request, exc: OperationalError) -> JSONResponse:
        logger.warning("database unavailable", extra=log_fields(error=str(exc.orig)[:200]))
        return problem(503, "Database unavailable", f"database unavailable: {str(exc.orig)[:200]}")

    @app.exception_handler(DBAPIError)
    async def _db_error(_request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return problem(503, "Database unavailable", "database connection lost")
        logger.exception("database error")
        return problem(500, "Internal error", "database error")


async def _get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async for session in session_scope(request.app.state.sessionmaker):
        yield session


SessionDep = Annotated[AsyncSession, Depends(_get_session)]
