"""Fake models for the recommend tests: m1, m2, m3 and llm recommend over httpx.MockTransport.

Each route is a real one (test_fakes.py checks them against each service's OpenAPI). A model
answers its `rankings[model]` (a list of track ids, best first), or misbehaves as its `mode`
says: down (connection refused), slow (answers after `slow_s`), not_ready (503), rejected
(404), empty (no items), garbage (200 without items).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import httpx

from tests.credentials import APP
from tests.route_table import RouteTable


@dataclass
class FakeModels(RouteTable):
    rankings: dict[str, list[str]] = field(default_factory=dict)
    modes: dict[str, str] = field(default_factory=dict)
    slow_s: float = 5.0
    calls: list[tuple[str, dict]] = field(default_factory=list)
    callers: set[str | None] = field(default_factory=set)  # X-MusicSpace-Caller headers seen

    def __post_init__(self) -> None:
        super().__init__()
        self.routes = {
            ("POST", f"/api/{model}/recommend"): self._answer(model)
            for model in ("m1", "m2", "m3", "llm")
        }

    def asked(self) -> list[str]:
        return sorted({model for model, _ in self.calls})

    def _answer(self, model: str):  # noqa: ANN202 - a route handler
        def handler(request: httpx.Request, _params: dict[str, str]) -> httpx.Response:
            body = json.loads(request.content)
            ranking = self.rankings.get(model, [])[: body["limit"]]
            items = [
                {"track_id": t, "title": f"{model} title {t}", "artist": "A", "score": 0.5}
                for t in ranking
            ]
            if self.modes.get(model) == "empty":
                items = []
            if self.modes.get(model) == "garbage":
                return httpx.Response(200, json={"user_id": body["user_id"]})
            if self.modes.get(model) == "rejected":
                return httpx.Response(404, json={"detail": f"user {body['user_id']} not found"})
            if self.modes.get(model) == "not_ready":
                return httpx.Response(503, json={"detail": "model not loaded"})
            return httpx.Response(200, json={"user_id": body["user_id"], "items": items})

        return handler

    async def handler(self, request: httpx.Request) -> httpx.Response:
        model = request.url.path.split("/")[2]
        self.calls.append((model, json.loads(request.content)))
        self.callers.add(request.headers.get("x-musicspace-caller"))
        if request.headers.get("authorization") != APP["Authorization"]:
            return httpx.Response(401, json={"detail": "models are called with the app credential"})
        mode = self.modes.get(model)
        if mode == "down":
            raise httpx.ConnectError("connection refused", request=request)
        if mode == "slow":
            await asyncio.sleep(self.slow_s)
        return self.dispatch(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)
