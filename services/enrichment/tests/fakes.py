"""A fake m2 for unit tests: deterministic predictions over httpx.MockTransport, switchable outages."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import httpx

from musicspace_shared.features import FEATURES


def fake_features(key: str) -> dict[str, float]:
    """Deterministic, in-range values derived from the item (so tests can recompute them)."""
    digest = hashlib.sha256(key.encode()).digest()
    values = {name: round(digest[i] / 255, 4) for i, name in enumerate(FEATURES[:7])}
    return values | {"tempo": 60 + digest[7] % 120, "loudness": -float(digest[8] % 30)}


def item_key(item: dict) -> str:
    return item.get("track_id") or f"{item.get('artist')}|{item.get('title')}"


@dataclass
class FakeM2:
    """predict-audio as m2 serves it; flip `down` to simulate an outage."""

    down: bool = False
    not_implemented: bool = False
    bad_ids: set[str] = field(default_factory=set)  # answered with ok=false
    reject_ids: set[str] = field(default_factory=set)  # make the whole batch a 422
    calls: int = 0
    items_seen: int = 0
    model_version: str = "fake-1"

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if self.not_implemented:
            return httpx.Response(501, json={"detail": "not yet"})
        body = json.loads(request.content)
        path = request.url.path
        if path != "/api/m2/predict-audio":
            return httpx.Response(404, json={"detail": "no route"})
        items = body["items"]
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
