"""Fake peers for unit tests over httpx.MockTransport: each serves a route table of real routes.

`routes` maps (method, path template) to a handler; the templates are the real services'
(services/enrichment/tests/test_fakes.py checks each against that service's OpenAPI), and a
request to any other path is recorded in `unknown` and answered 404, so a test sees enrichment
calling a route no service has.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from musicspace_shared.features import FEATURES
from tests.credentials import APP
from tests.route_table import RouteTable


def fake_features(key: str) -> dict[str, float]:
    """Deterministic, in-range values derived from the item (so tests can recompute them)."""
    digest = hashlib.sha256(key.encode()).digest()
    values = {name: round(digest[i] / 255, 4) for i, name in enumerate(FEATURES[:7])}
    return values | {"tempo": 60 + digest[7] % 120, "loudness": -float(digest[8] % 30)}


def item_key(item: dict) -> str:
    return item.get("track_id") or f"{item.get('artist')}|{item.get('title')}"


@dataclass
class FakeM2(RouteTable):
    """predict-audio as m2 serves it; flip `down` to simulate an outage."""

    down: bool = False
    bad_ids: set[str] = field(default_factory=set)  # answered with ok=false
    reject_ids: set[str] = field(default_factory=set)  # make the whole batch a 422
    calls: int = 0
    items_seen: int = 0
    model_version: str = "fake-1"

    def __post_init__(self) -> None:
        super().__init__()
        self.routes = {("POST", "/api/m2/predict-audio"): self.predict_audio}

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return self.dispatch(request)

    def predict_audio(self, request: httpx.Request, _params: dict[str, str]) -> httpx.Response:
        items = json.loads(request.content)["items"]
        self.calls += 1
        self.items_seen += len(items)
        if any(item.get("track_id") in self.reject_ids for item in items):
            return httpx.Response(422, json={"detail": "items: bad item"})
        results = []
        for index, item in enumerate(items):
            if item.get("track_id") in self.bad_ids:
                results.append({"index": index, "ok": False, "error": "cannot predict"})
            else:
                features = fake_features(item_key(item))
                results.append(
                    {
                        "index": index,
                        "track_id": item.get("track_id"),
                        "ok": True,
                        "features": features,
                    }
                )
        return httpx.Response(
            200, json={"source": "m2", "model_version": self.model_version, "results": results}
        )

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)


class FakePeers(RouteTable):
    """m1, m2, m3 and llm as one mock transport: records calls, m1 remembers when it trained.

    Peers are called with the app credential; llm's index sync (an ops route) with the admin
    key `admin_key`."""

    def __init__(self, admin_key: str) -> None:
        super().__init__()
        self.admin_key = admin_key
        self.m2 = FakeM2()
        self.calls: list[str] = []
        self.m1_trained_at: dict[int, str] = {}
        self.routes = {
            ("POST", "/api/m2/predict-audio"): self.m2.predict_audio,
            ("POST", "/api/m2/recommend"): self.m2_recommend,
            ("POST", "/api/m1/train"): self.m1_train,
            ("GET", "/api/m1/status/{user_id}"): self.m1_status,
            ("POST", "/api/m3/train"): self.m3_train,
            ("POST", "/api/llm/index/sync"): self.llm_index_sync,
        }

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"{request.method} {request.url.path}")
        expected = (
            f"Bearer {self.admin_key}"
            if request.url.path == "/api/llm/index/sync"
            else APP["Authorization"]
        )
        if request.headers.get("authorization") != expected:
            return httpx.Response(401, json={"detail": "not the credential this route expects"})
        return self.dispatch(request)

    def m1_train(self, request: httpx.Request, _params: dict[str, str]) -> httpx.Response:
        user_id = json.loads(request.content)["user_id"]
        self.m1_trained_at[user_id] = datetime.now(UTC).isoformat()
        return httpx.Response(
            200, json={"user_id": user_id, "model": "personal", "tracks_used": 12}
        )

    def m1_status(self, _request: httpx.Request, params: dict[str, str]) -> httpx.Response:
        user_id = int(params["user_id"])
        trained = self.m1_trained_at.get(user_id)
        return httpx.Response(
            200, json={"user_id": user_id, "trained": bool(trained), "trained_at": trained}
        )

    def m2_recommend(self, request: httpx.Request, _params: dict[str, str]) -> httpx.Response:
        user_id = json.loads(request.content)["user_id"]
        return httpx.Response(200, json={"user_id": user_id, "strategy": "personal_svm"})

    def m3_train(self, request: httpx.Request, _params: dict[str, str]) -> httpx.Response:
        user_id = json.loads(request.content)["user_id"]
        return httpx.Response(200, json={"user_id": user_id, "model": "personal"})

    def llm_index_sync(self, _request: httpx.Request, _params: dict[str, str]) -> httpx.Response:
        return httpx.Response(202, json={"accepted": "started", "running": True})
