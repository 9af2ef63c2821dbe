"""The fake peers serve exactly real routes: each (method, path) is in the real service's OpenAPI.

A fake serving a route the real service lacks would let the tests exercise a call production
never answers (init-models once called /api/m2/train, which m2 does not have, and the fake
served it)."""

from __future__ import annotations

import importlib
from functools import cache

import pytest

from musicspace_shared import registry
from services.enrichment.tests.fakes import FakeM2, FakePeers

FAKE_ROUTES = sorted({*FakePeers(admin_key="k").routes, *FakeM2().routes})


def _owner(path: str) -> str:
    """The service the gateway routes `path` to (the registry's routes)."""
    for service in registry.SERVICES:
        for route in service.routes:
            if path == route or (route.endswith("/") and path.startswith(route)):
                return service.name
    raise AssertionError(f"no registered service serves {path}")


@cache
def _real_routes(service: str) -> set[tuple[str, str]]:
    app = importlib.import_module(f"musicspace_{service}.app").create_app()
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }


@pytest.mark.parametrize(("method", "path"), FAKE_ROUTES, ids=[" ".join(r) for r in FAKE_ROUTES])
def test_every_fake_route_is_a_real_route(method: str, path: str) -> None:
    service = _owner(path)
    assert (method, path) in _real_routes(service), f"{service} has no {method} {path}"


def test_the_fakes_cover_every_peer_enrichment_calls() -> None:
    assert {_owner(path) for _, path in FAKE_ROUTES} == {"m1", "m2", "m3", "llm"}
