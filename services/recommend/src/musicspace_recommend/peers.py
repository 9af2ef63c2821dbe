"""The models /api/recommend asks: one ServiceClient per model, each call bounded by a deadline.

A model's answer is read loosely (`items[].track_id`, with `title` and `artist` when present;
any other field is ignored), so the models' answers may grow without breaking this service.
Nothing raises: a model that is down, not ready, slow, refusing or answering nothing becomes
a ModelAnswer with that status, and the answer goes on without it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from musicspace_recommend.settings import MODELS
from musicspace_shared.http import PeerRejected, PeerUnavailable, ServiceClient
from musicspace_shared.ids import is_valid_track_id
from musicspace_shared.metrics import INTERNAL_HEADER

ROUTES = {model: f"/api/{model}/recommend" for model in MODELS}
# The largest `limit` each model's recommend route takes.
MAX_LIMIT = {"m1": 200, "m2": 200, "m3": 200, "llm": 50}


@dataclass(frozen=True)
class Track:
    track_id: str
    title: str | None = None
    artist: str | None = None


@dataclass
class ModelAnswer:
    model: str
    status: str  # contributed | empty | unavailable | not_ready | timeout | rejected
    tracks: list[Track] = field(default_factory=list)
    detail: str | None = None
    http_status: int | None = None
    elapsed_ms: float | None = None


def parse_tracks(body: Any) -> list[Track]:
    """The ranked tracks of a recommend answer; ValueError if it has no `items` list."""
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise ValueError("no items list")
    tracks: list[Track] = []
    for item in items:
        track_id = item.get("track_id") if isinstance(item, dict) else None
        if isinstance(track_id, str) and is_valid_track_id(track_id):
            title, artist = item.get("title"), item.get("artist")
            tracks.append(
                Track(
                    track_id,
                    title if isinstance(title, str) else None,
                    artist if isinstance(artist, str) else None,
                )
            )
    return tracks


async def ask(
    client: ServiceClient,
    model: str,
    *,
    user_id: int,
    limit: int,
    deadline_s: float,
    query: str | None = None,
    selection: dict[str, Any] | None = None,
) -> ModelAnswer:
    """One model's ranking for the user, or why there is none, within deadline_s.
    `selection`: the request's filters, exclude, exclude_owned and max_per_artist, passed on
    as they are (every model route takes them: musicspace_shared.recommend)."""
    body: dict[str, Any] = {
        **(selection or {}),
        "user_id": user_id,
        "limit": min(limit, MAX_LIMIT[model]),
    }
    if model == "llm":
        body["query"] = query
    started = time.perf_counter()

    def answer(status: str, **kwargs: Any) -> ModelAnswer:
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        return ModelAnswer(model, status, elapsed_ms=elapsed, **kwargs)

    try:
        # Reading only: safe to retry, but the deadline bounds every try together.
        async with asyncio.timeout(deadline_s):
            response = await client.post_json(ROUTES[model], body, idempotent=True)
    except TimeoutError:
        return answer("timeout", detail=f"no answer within its deadline ({deadline_s:g} s)")
    except PeerUnavailable as exc:
        status = "not_ready" if exc.not_ready else "unavailable"
        return answer(status, detail=str(exc)[:300], http_status=exc.status_code)
    except PeerRejected as exc:
        return answer("rejected", detail=exc.detail[:300], http_status=exc.status_code)
    try:
        tracks = parse_tracks(response.json())
    except ValueError as exc:
        detail = f"not a recommend answer: {exc}"
        return answer("rejected", detail=detail, http_status=response.status_code)
    if not tracks:
        return answer("empty", detail="no tracks for this user", http_status=response.status_code)
    return answer("contributed", tracks=tracks, http_status=response.status_code)


def build_clients(
    settings: Any, transport: httpx.AsyncBaseTransport | None = None
) -> dict[str, ServiceClient]:
    """One long-lived client per model; its timeout is a little over the deadline (the
    deadline cuts first) and no retries beyond one (a refused connection fails at once)."""
    return {
        model: ServiceClient(
            model,
            getattr(settings, f"{model}_url"),
            timeout_s=settings.deadline_s(model) + 1.0,
            retries=1,
            backoff_s=0.05,
            transport=transport,
            headers=settings.peer_headers() | {INTERNAL_HEADER: "recommend"},
        )
        for model in MODELS
    }
