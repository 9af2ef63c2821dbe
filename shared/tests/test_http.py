"""ServiceClient: bounded retries for idempotent calls, typed errors with the peer's status."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from musicspace_shared.errors import UpstreamUnavailable
from musicspace_shared.http import (
    PeerRejected,
    PeerUnavailable,
    ReplicaSpreadingTransport,
    ServiceClient,
)
from musicspace_shared.logs import request_id_var


def client_with(handler) -> ServiceClient:
    return ServiceClient(
        "peer", "http://peer", retries=2, backoff_s=0.001, transport=httpx.MockTransport(handler)
    )


async def test_idempotent_call_retries_until_success() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503) if len(calls) < 3 else httpx.Response(200, json={"ok": True})

    client = client_with(handler)
    assert await client.get_json("/x") == {"ok": True}
    assert len(calls) == 3


async def test_non_idempotent_post_is_sent_once() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503)

    with pytest.raises(PeerUnavailable) as raised:
        await client_with(handler).post_json("/train", {"user_id": 1})
    assert len(calls) == 1
    assert raised.value.status_code == 503 and raised.value.not_ready


async def test_unreachable_peer_raises_upstream_unavailable_after_bounded_attempts() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("refused")

    with pytest.raises(UpstreamUnavailable, match="peer unavailable") as raised:
        await client_with(handler).post_json("/predict", {}, idempotent=True)
    assert len(calls) == 3
    assert isinstance(raised.value, PeerUnavailable)
    assert raised.value.status_code is None and not raised.value.not_ready


@pytest.mark.parametrize("status", [404, 422, 500])
async def test_client_errors_raise_peer_rejected_with_status_and_are_not_retried(status) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(status, json={"title": "Not found", "detail": "unknown"}, headers={})

    with pytest.raises(PeerRejected) as raised:
        await client_with(handler).request("GET", "/missing")
    assert len(calls) == 1
    assert (raised.value.status_code, raised.value.detail) == (status, "unknown")


async def test_a_gateway_error_after_the_retries_carries_its_status() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(504, text="upstream timed out")

    with pytest.raises(PeerUnavailable) as raised:
        await client_with(handler).get_json("/x")
    assert raised.value.status_code == 504 and not raised.value.not_ready
    assert "504: upstream timed out" in raised.value.detail


async def test_request_id_is_forwarded() -> None:
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["id"] = request.headers.get("x-request-id")
        return httpx.Response(200, json={})

    token = request_id_var.set("req-42")
    try:
        await client_with(handler).get_json("/x")
    finally:
        request_id_var.reset(token)
    assert seen["id"] == "req-42"


@pytest.mark.parametrize("refresh_s", [60.0, 0.0], ids=["cached", "resolved-every-call"])
async def test_calls_to_a_scaled_peer_go_round_robin_over_its_replicas(
    monkeypatch, refresh_s: float
) -> None:
    """compose --scale m2=2: the name resolves to two addresses and both get calls, also when
    the calls are further apart than the re-resolution period (enrichment's init-models)."""
    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers["host"]))
        return httpx.Response(200, json={})

    async def resolve(host, port, **kwargs):
        assert host == "m2"
        return [(2, 1, 6, "", (address, port)) for address in ("10.0.0.7", "10.0.0.5")]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", resolve)
    transport = ReplicaSpreadingTransport(httpx.MockTransport(handler), refresh_s=refresh_s)
    client = ServiceClient("m2", "http://m2:8000", transport=transport)
    for _ in range(4):
        await client.get_json("/x")
    assert seen == [("10.0.0.5", "m2:8000"), ("10.0.0.7", "m2:8000")] * 2


async def test_addresses_and_unresolvable_names_pass_through_unchanged() -> None:
    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        return httpx.Response(200, json={})

    transport = ReplicaSpreadingTransport(httpx.MockTransport(handler))
    for url in ("http://127.0.0.1:9/x", "http://no-such-host.invalid/x"):
        async with httpx.AsyncClient(transport=transport) as client:
            await client.get(url)
    assert hosts == ["127.0.0.1", "no-such-host.invalid"]


async def test_each_replica_can_be_called_by_its_address_keeping_the_name(monkeypatch) -> None:
    """The erasure calls every replica, not the next one: replicas() lists the addresses the
    name resolves to now, request_replica() sends to one of them (Host keeps the name)."""
    seen: list[tuple[str, str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers["host"], request.url.path))
        return httpx.Response(200, json={})

    async def resolve(host, port, **kwargs):
        assert host == "m1"
        return [(2, 1, 6, "", (address, port)) for address in ("10.0.0.9", "10.0.0.3")]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", resolve)
    transport = ReplicaSpreadingTransport(httpx.MockTransport(handler))
    client = ServiceClient("m1", "http://m1:8000", transport=transport)
    addresses = await client.replicas()
    for address in addresses:
        await client.request_replica(address, "DELETE", "/admin/users/5")
    assert addresses == ["10.0.0.3", "10.0.0.9"]
    assert seen == [
        ("10.0.0.3", "m1:8000", "/admin/users/5"),
        ("10.0.0.9", "m1:8000", "/admin/users/5"),
    ]
    local = ServiceClient("m1", "http://127.0.0.1:8001", transport=transport)
    assert await local.replicas() == ["127.0.0.1"]
