"""The fake models serve exactly real routes, and with the fields those routes take today."""

from __future__ import annotations

import importlib
from functools import cache

import pytest

from services.recommend.tests.fakes import FakeModels

FAKE_ROUTES = sorted(FakeModels().routes)


@cache
def _schema(service: str) -> dict:
    return importlib.import_module(f"musicspace_{service}.app").create_app().openapi()


@pytest.mark.parametrize(("method", "path"), FAKE_ROUTES, ids=[" ".join(r) for r in FAKE_ROUTES])
def test_every_fake_route_is_a_real_route_taking_what_recommend_sends(
    method: str, path: str
) -> None:
    service = path.split("/")[2]
    operation = _schema(service)["paths"].get(path, {}).get(method.lower())
    assert operation is not None, f"{service} has no {method} {path}"
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = _schema(service)["components"]["schemas"][ref.rsplit("/", 1)[1]]
    sent = {"user_id", "limit"} | ({"query"} if service == "llm" else set())
    assert sent <= set(body["properties"]), (service, body["properties"].keys())
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    items = _schema(service)["components"]["schemas"][answer.rsplit("/", 1)[1]]["properties"]
    assert "items" in items
