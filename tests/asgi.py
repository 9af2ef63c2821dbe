"""In-process HTTP against a service app: its lifespan started, an httpx client over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from tests import credentials


def asgi_client(app: FastAPI, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    """A client whose requests go straight to `app` (no socket); use it as a context manager.
    It sends the app credential (tests/credentials.py) unless `headers` say otherwise."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers=credentials.APP if headers is None else headers,
    )


@asynccontextmanager
async def serving(
    app: FastAPI, headers: dict[str, str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """Start `app` (its lifespan: DB engine, models, background tasks) and yield a client."""
    async with app.router.lifespan_context(app), asgi_client(app, headers) as client:
        yield client
