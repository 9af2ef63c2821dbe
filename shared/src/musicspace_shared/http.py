"""One typed HTTP client per callee: a long-lived httpx.AsyncClient with bounded retries."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx

from musicspace_shared.errors import UpstreamUnavailable
from musicspace_shared.logs import request_id_var

RETRYABLE_STATUS = {502, 503, 504}


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
            transport=transport,
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
