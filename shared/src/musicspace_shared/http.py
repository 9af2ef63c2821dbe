"""The one client for calls between our services: a long-lived httpx.AsyncClient per callee,
bounded retries, and typed errors that carry the peer's status code.

A call returns the peer's 2xx/3xx answer or raises: PeerUnavailable (the peer could not be
reached, or kept answering 502/503/504: 503 is up but not ready) or PeerRejected (an error it
would give again: 4xx, 500, 501). Callers branch on `status_code`, never on message text.
"""

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


class PeerUnavailable(UpstreamUnavailable):
    """The peer could not be reached (status_code None) or answered 502/503/504 on every try.

    A DomainError (503): a route that lets it propagate tells its own caller the same."""

    def __init__(self, service: str, detail: str, *, status_code: int | None) -> None:
        super().__init__(f"{service} unavailable: {detail}", service=service)
        self.service = service
        self.status_code = status_code

    @property
    def not_ready(self) -> bool:
        """The peer is up but not ready (e.g. no model yet): /readyz-style 503."""
        return self.status_code == 503


class PeerRejected(Exception):
    """The peer answered with an error that a retry would not change (4xx, 500, 501)."""

    def __init__(self, service: str, status_code: int, detail: str) -> None:
        super().__init__(f"{service} answered {status_code}: {detail}")
        self.service = service
        self.status_code = status_code
        self.detail = detail


def problem_detail(response: httpx.Response) -> str:
    """The readable part of an error answer: a problem's detail or title, else the text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or body)[:300]
    return str(body)[:300]


async def resolve_addresses(host: str, port: int) -> list[str]:
    """Every address `host` resolves to now, sorted (one per replica under compose); an IP
    address, or a name that does not resolve, is returned as it is."""
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return [host]
    return sorted({str(info[4][0]) for info in infos}) or [host]


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
            addresses = await resolve_addresses(host, port)
            if addresses == [host]:
                return host  # the inner transport reports the failure as a ConnectError
            cached = (time.monotonic(), addresses)
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
        """Send a request and return a 2xx/3xx answer; PeerUnavailable when the peer cannot be
        reached or stays 502/503/504, PeerRejected for any other error status."""
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
        last_error, last_status = "", None
        for attempt in range(attempts):
            try:
                response = await self._client.request(method, path, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                last_error, last_status = f"{type(exc).__name__}: {exc}", None
            else:
                if response.status_code < 400:
                    return response
                if response.status_code not in RETRYABLE_STATUS:
                    raise PeerRejected(self.name, response.status_code, problem_detail(response))
                last_error = f"{response.status_code}: {problem_detail(response)[:200]}"
                last_status = response.status_code
            if attempt + 1 < attempts:
                delay = self.backoff_s * (2**attempt)
                await asyncio.sleep(delay + random.uniform(0, delay))
        raise PeerUnavailable(self.name, last_error, status_code=last_status)

    async def replicas(self) -> list[str]:
        """The peer's addresses now: one per replica under compose (`--scale m1=3`)."""
        url = self._client.base_url
        return await resolve_addresses(url.host, url.port or 80)

    async def request_replica(
        self, address: str, method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        """`request` sent to one replica's address (from `replicas()`), not spread over them;
        the Host header keeps the peer's name."""
        base = self._client.base_url
        url = base.copy_with(host=address).join(path) if address != base.host else path
        headers = {"Host": base.netloc.decode("ascii"), **(kwargs.pop("headers", None) or {})}
        return await self.request(method, str(url), headers=headers, **kwargs)

    async def get_json(self, path: str, **kwargs: Any) -> Any:
        response = await self.request("GET", path, **kwargs)
        return response.json()

    async def post_json(
        self, path: str, payload: Any, *, idempotent: bool = False, **kwargs: Any
    ) -> httpx.Response:
        return await self.request("POST", path, json=payload, idempotent=idempotent, **kwargs)
