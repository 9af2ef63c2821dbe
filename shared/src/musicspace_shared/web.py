"""The service skeleton: app factory, health, metrics, request ids, CORS, error rendering."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from http import HTTPStatus
from typing import Annotated, Any, TypeVar

import anyio.lowlevel
from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from musicspace_shared import heap, registry
from musicspace_shared.admin import admin_router
from musicspace_shared.auth import rate_limiters
from musicspace_shared.db.engine import make_engine, make_sessionmaker, ping, session_scope
from musicspace_shared.errors import DomainError, ModelNotReady
from musicspace_shared.forget import forget_router
from musicspace_shared.health import Degraded, shutdown_check
from musicspace_shared.limits import TrainingQueue
from musicspace_shared.logs import configure_logging, log_fields, request_id_var
from musicspace_shared.metrics import INTERNAL_HEADER, ServiceMetrics
from musicspace_shared.settings import CommonSettings

logger = logging.getLogger("musicspace.web")
T = TypeVar("T")


ReadinessCheck = Callable[[FastAPI], Awaitable[str | None]]
"""Returns None when ready, Degraded(note) when ready with a caveat, or a reason when not."""

Startup = Callable[[FastAPI], AbstractAsyncContextManager[Any]]
"""Called in lifespan after the DB engine exists: builds the service's state, yields it and
closes it on exit. What it yields is the service's runtime: `app.state.runtime`, reached by
routes through `runtime_dependency(Kind)` and by readiness checks through `runtime_of`."""


def problem(
    status: int, title: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"status": status, "title": title, "detail": detail, **extra}
    return JSONResponse(
        jsonable_encoder(body),
        status_code=status,
        media_type="application/problem+json",
        headers=headers,
    )


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class JsonBodyOnlyMiddleware:
    """415 for a request body that is not JSON: every route reads JSON, and without this a
    form or text body gets a misleading 422 ("Input should be a valid dictionary")."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in _BODY_METHODS:
            headers = dict(scope.get("headers") or [])
            has_body = headers.get(b"content-length", b"0") != b"0" or (
                b"transfer-encoding" in headers
            )
            media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if has_body and media != b"application/json" and not media.endswith(b"+json"):
                got = media.decode("latin-1")[:80] or "no Content-Type"
                response = problem(
                    415,
                    "Unsupported media type",
                    f"the body must be JSON: send Content-Type: application/json (got {got})",
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class HeadAsGetMiddleware:
    """HEAD answers what GET would, without the body (FastAPI routes list GET only)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)


_REQUEST_ID_PREFIX = secrets.token_hex(6)
_request_numbers = itertools.count()


def _new_request_id() -> str:
    """Unique per process and run (a random prefix and a counter), without a syscall per
    request as uuid4 makes (about 3% of m3's busy CPU in a recommend profile)."""
    return f"{_REQUEST_ID_PREFIX}{next(_request_numbers):010x}"


_INTERNAL = INTERNAL_HEADER.lower().encode()


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
            self.metrics.answered(
                route=template, method=method, status=status, internal=_INTERNAL in headers
            )
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


NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


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

    model_family ("M1", "M2", "M3") mounts the admin model routes (usage, cleanup); a service
    the registry marks `user_state` gets DELETE /admin/users/{user_id} (musicspace_shared.forget).
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
                app.state.runtime = await stack.enter_async_context(startup(app))
            heap.settle()
            heap.watch(metrics)
            resettle = asyncio.create_task(heap.resettle_every(settings.heap_resettle_s))
            stack.callback(resettle.cancel)
            logger.info("started", extra=log_fields(version=version))
            yield
        await engine.dispose()

    app = FastAPI(
        title=title,
        version=version,
        description=f"{description}\n\n{credentials_doc(settings)}".strip(),
        lifespan=lifespan,
        # No redirects: Starlette builds the trailing-slash redirect from the Host header.
        redirect_slashes=False,
        # Metrics are our own (/metrics); FastAPI's OpenTelemetry hooks asked the global
        # providers on every request whether anyone listens (a few % of a search's CPU).
        telemetry=NO_TELEMETRY,
    )
    app.state.settings = settings
    app.state.rate_limiters = rate_limiters(settings)
    app.state.trainings = TrainingQueue(limit=settings.train_queue_limit)
    app.add_middleware(JsonBodyOnlyMiddleware)
    app.add_middleware(HeadAsGetMiddleware)
    app.state.metrics = metrics
    app.state.service = service
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
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
    if any(s.name == service and s.user_state for s in registry.SERVICES):
        app.include_router(forget_router())
    return app


def credentials_doc(settings: CommonSettings) -> str:
    """The rules a client must know, in every service's OpenAPI description."""
    return f"""**Credentials.** Every `/api/...` route needs one (see the security schemes):
the app credential (`Authorization: Bearer <key>` or `X-API-Key`) for the web app's backend,
which may act for any user; a user token (`Authorization: Bearer <JWT>`, HS256, the user id
as a string in `sub`, `exp` required), which reads and acts only for its own user; or the admin
key, which the ops routes (`/admin/...`, index sync, enrich-all) require. Without one: 401; a
user token asking for another user's data, or a non-admin credential on an ops route: 403.

**Limits.** Per credential and service process: a user token
{settings.rate_limit_user_per_s:g} requests/s (bursts of {settings.rate_limit_user_burst}) per
user, the app credential {settings.rate_limit_app_per_s:g}/s (bursts of
{settings.rate_limit_app_burst}), 0 meaning none; training runs for at most
{settings.train_queue_limit} users at once and a second request for a user joins the running
one. Over a limit: 429 with `Retry-After` (seconds).

**Input.** Bodies are JSON (415 otherwise); fields are not coerced (`true`, `"1"` and `1.0`
are not the number 1; `"no"` is not false); unknown fields are refused with 422 naming them;
ids in paths are plain decimal digits."""


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
                for code, description in _documented_refusals(operation).items():
                    responses.setdefault(code, {"description": description})
                for code, response in responses.items():
                    if code[0] in "45" and "content" not in response:
                        response.update(problem_response)
                responses.setdefault("4XX", {"description": "Client error", **problem_response})
                responses.setdefault(
                    "5XX", {"description": "A dependency is unavailable", **problem_response}
                )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _documented_refusals(operation: dict[str, Any]) -> dict[str, str]:
    """The refusals every client meets, by status, for one OpenAPI operation."""
    refusals: dict[str, str] = {}
    if operation.get("security"):
        refusals |= {
            "401": "No credential, or one that is not recognised (or an expired user token)",
            "403": "The credential may not do this: a user token for another user's data, or "
            "not the admin key on an ops route",
            "429": "Over this credential's rate limit (or m1/m3 training queue full): retry "
            "after the Retry-After header's seconds",
        }
    if "requestBody" in operation:
        refusals["415"] = "The body is not JSON (Content-Type: application/json)"
    return refusals


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


def _allowed(request: Request, headers: dict[str, str]) -> set[str]:
    """Every method the path takes: Starlette names only the route that matched the path
    first, and a path served by several routes (PUT, GET and DELETE /api/users/{id}) has
    more; the OpenAPI document lists them all. HEAD goes wherever GET does
    (HeadAsGetMiddleware)."""
    methods = set(headers["Allow"].split(", "))
    template = getattr(request.scope.get("route"), "path", None)
    if template is not None:
        operations = request.app.openapi().get("paths", {}).get(template, {})
        methods |= {method.upper() for method in operations}
    return methods | ({"HEAD"} if "GET" in methods else set())


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        return problem(exc.status, exc.title, exc.detail, headers=exc.headers, **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = (
            HTTPStatus(exc.status_code).phrase
            if exc.status_code in HTTPStatus._value2member_map_
            else "Error"
        )
        headers = dict(exc.headers or {})
        detail = str(exc.detail)
        if exc.status_code == 405 and "Allow" in headers:
            allowed = sorted(_allowed(request, headers))
            headers["Allow"] = ", ".join(allowed)
            detail = f"{detail}: this path takes {headers['Allow']}"
        return problem(exc.status_code, title, detail, headers=headers)

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
        given = exc.errors()[0].get("input") if errors else None
        # Say what was sent when it is a plain value ("got true"), never a whole body.
        got = (
            f" (got {json.dumps(given)[:60]})"
            if isinstance(given, str | int | float | bool) and first.get("type") != "missing"
            else ""
        )
        return problem(422, "Invalid input", f"{where}: {first['msg']}{got}", errors=errors)

    @app.exception_handler(OperationalError)
    async def _db_down(_request: Request, exc: OperationalError) -> JSONResponse:
        logger.warning("database unavailable", extra=log_fields(error=str(exc.orig)[:200]))
        return problem(503, "Database unavailable", f"database unavailable: {str(exc.orig)[:200]}")

    @app.exception_handler(PoolTimeout)
    async def _db_busy(_request: Request, exc: PoolTimeout) -> JSONResponse:
        # Every pooled connection is held (a backlog of requests at scale): busy, not broken.
        logger.warning("database pool exhausted", extra=log_fields(error=str(exc)[:200]))
        return problem(
            503, "Database busy", "no database connection free", headers={"Retry-After": "1"}
        )

    @app.exception_handler(DBAPIError)
    async def _db_error(_request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return problem(503, "Database unavailable", "database connection lost")
        logger.exception("database error")
        return problem(500, "Internal error", "database error")


def runtime_of(app: FastAPI, kind: type[T]) -> T | None:
    """The runtime the service's startup yielded, or None while it has not (starting)."""
    runtime = getattr(app.state, "runtime", None)
    return runtime if isinstance(runtime, kind) else None


def runtime_dependency(kind: type[T]) -> Callable[[Request], Awaitable[T]]:
    """A dependency giving routes the service's runtime, typed:
    `RuntimeDep = Annotated[Runtime, Depends(runtime_dependency(Runtime))]`."""

    # async: a plain def dependency would run in a worker thread on every request
    async def runtime(request: Request) -> T:
        found = runtime_of(request.app, kind)
        if found is None:
            raise ModelNotReady(f"the service is starting ({kind.__name__} not built yet)")
        return found

    return runtime


async def _get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async for session in session_scope(request.app.state.sessionmaker):
        yield session


SessionDep = Annotated[AsyncSession, Depends(_get_session)]


async def train_in_queue(
    request: Request, user_id: int, train: Callable[[AsyncSession], Awaitable[T]]
) -> T:
    """Run `train(session)` for a user in the service's TrainingQueue: joined when that user's
    training already runs, 429 when the queue is full. It gets a session of its own, since it
    may outlive the request that started it."""
    maker = request.app.state.sessionmaker

    async def work() -> T:
        async with maker() as session:
            return await train(session)

    trainings: TrainingQueue = request.app.state.trainings
    return await trainings.run(user_id, work)
