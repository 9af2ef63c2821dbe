"""One typed HTTP client per callee: a long-lived httpx.AsyncClient with bounded retries."""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import random
import socket
import time
from typing import Any

import httpx

from musicspace_shared.errors import UpstreamUnavailable
from musicspace_shared.logs import request_id_var

RETRYABLE_STATUS = {502, 503, 504}


class ReplicaSpreadingTransport(httpx.AsyncBaseTransport):
    """Round robin over every address a peer's name resolves to, one request at a time.

    Under compose, `http://m2:8000` resolves to one address per replica (`--scale m2=2`), but a
    keep-alive pool would send every call down the first connection it opened: one replica
    would do all of enrichment's work. Each request here goes to the next address (the Host
    header keeps the name); the name is resolved again every `refresh_s`, so replicas that
    come or go are followed. An IP address or a name that does not resolve passes through.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None, *, refresh_s: float = 5.0):
        self._inner = inner or httpx.AsyncHTTPTransport()
        self._refresh_s = refresh_s
        self._resolved: dict[tuple[str, int], tuple[float, list[str]]] = {}
        # One turn counter per peer that outlives re-resolution: calls further apart than
        # refresh_s still alternate instead of always starting over at the first address.
        self._turns: dict[tuple[str, int], itertools.count[int]] = {}

    async def _next_address(self, host: str, port: int) -> str:
        key = (host, port)
        cached = self._resolved.get(key)
        if cached is None or time.monotonic() - cached[0] > self._refresh_s:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
            except OSError:
                return host  # the inner transport reports the failure as a ConnectError
            cached = (time.monotonic(), sorted({str(info[4][0]) for info in infos}))
            self._resolved[key] = cached
        addresses = cached[1]
        return addresses[next(self._turns.setdefault(key, itertools.count())) % len(addresses)]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        try:
            ipaddress.ip_address(host)
        except ValueError:
            address = await self._next_address(host, request.url.port or 80)
            if ":" in address:
                address = f"[{address}]"
            request.url = request.url.copy_with(host=address)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class ServiceClient:
    """Calls one peer service. Retries only idempotent calls (or ones marked idempotent)."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        timeout_s: float = 30.0,
        retries: int = 3,
        backoff_s: float = 0.2,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """headers go with every call (the caller's credential: settings.peer_headers())."""
        self.name = name
        self.retries = retries
        self.backoff_s = backoff_s
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout_s, connect=min(5.0, timeout_s)),
            # A test's fake transport answers by itself; real calls spread over the replicas.
            transport=transport or ReplicaSpreadingTransport(),
            headers=headers,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self, method: str, path: str, *, idempotent: bool | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send a request; raise UpstreamUnavailable when the peer cannot be reached or is 5xx."""
        retry = (
            idempotent
            if idempotent is not None
            else method.upper() in {"GET", "HEAD", "PUT", "DELETE"}
        )
        headers = dict(kwargs.pop("headers", None) or {})
        request_id = request_id_var.get()
        if request_id:
            headers.setdefault("X-Request-ID", request_id)
        attempts = 1 + (self.retries if retry else 0)
        last_error = ""
        for attempt in range(attempts):
            try:
                response = await self._client.request(method, path, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code not in RETRYABLE_STATUS:
                    return response
                last_error = f"HTTP {response.status_code}: {response.text[:200]}"
            if attempt + 1 < attempts:
                delay = self.backoff_s * (2**attempt)
                await asyncio.sleep(delay + random.uniform(0, delay))
        raise UpstreamUnavailable(f"{self.name} unavailable: {last_error}", service=self.name)

    async def get_json(self, path: str, **kwargs: Any) -> Any:
        response = await self.request("GET", path, **kwargs)
        return response.json()

    async def post_json(
        self, path: str, payload: Any, *, idempotent: bool = False, **kwargs: Any
    ) -> httpx.Response:
        return await self.request("POST", path, json=payload, idempotent=idempotent, **kwargs)
