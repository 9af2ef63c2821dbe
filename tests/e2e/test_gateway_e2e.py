"""Every public route over https through the real Traefik to the real services.

Status codes are the ones DESIGN.md promises (200 for a known user or track, 404 for an
unknown one, 422 for malformed input); a 501 stub or a 5xx fails. The ops endpoints are not
routed, the security headers are on every answer, the rate limit answers 429.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from musicspace_shared.recommendation_ids import parse
from tests.e2e.stack import Stack
from tests.traefik import error_lines, running_traefik

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.mariadb]

UNKNOWN_USER = 987_654_321
UNKNOWN_TRACK = "noSuchTrack0000000000"
OPS_PATHS = ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/admin/models/usage")


def _items(body: Any) -> list[dict[str, Any]]:
    assert isinstance(body, dict) and isinstance(body.get("items"), list), body
    for item in body["items"]:
        assert isinstance(item.get("track_id"), str) and "score" in item, item
    return body["items"]


def _recommendation(limit: int) -> Callable[[Any, Stack], None]:
    def check(body: Any, stack: Stack) -> None:
        items = _items(body)
        assert body["user_id"] == stack.user_id
        assert 0 < len(items) <= limit
        assert len({item["track_id"] for item in items}) == len(items), (
            "duplicates in a recommendation"
        )
        # The common shape (musicspace_shared.recommend): an id naming the route, a cursor key,
        # scores in 0..1.
        assert parse(body["recommendation_id"]).source == body["source"], body
        assert "next_cursor" in body and all(0 <= item["score"] <= 1 for item in items), body

    return check


def _blended(body: Any, stack: Stack) -> None:
    """/api/recommend: one page (no cursor), the models that answered, scores in 0..1."""
    items = _items(body)
    assert body["user_id"] == stack.user_id and 0 < len(items) <= 5, body
    assert len({item["track_id"] for item in items}) == len(items), "duplicates"
    assert parse(body["recommendation_id"]).source == body["source"], body
    assert parse(body["recommendation_id"]).arm == body["arm"], body
    assert body["models"] and all(0 <= item["score"] <= 1 for item in items), body


def _has(*keys: str) -> Callable[[Any, Stack], None]:
    def check(body: Any, stack: Stack) -> None:
        assert isinstance(body, dict) and set(keys) <= set(body), (keys, body)

    return check


def _search(body: Any, stack: Stack) -> None:
    items = _items(body)
    assert items and all(
        isinstance(item.get("reason"), str) and item["reason"] for item in items
    ), items


def _search_recommendation(body: Any, stack: Stack) -> None:
    _recommendation(5)(body, stack)
    _search(body, stack)


def _predictions(body: Any, stack: Stack) -> None:
    assert body["source"] == "m2" and body["model_version"]
    known, unknown, text = body["results"]
    assert known["ok"] and set(known["features"]) >= {"danceability", "energy", "tempo", "loudness"}
    assert not unknown["ok"] and unknown["error"]
    assert text["ok"] and text["features"]


def _similar(body: Any, stack: Stack) -> None:
    items = _items(body)
    assert items and stack.track_id not in {item["track_id"] for item in items}


def _events(body: Any, stack: Stack) -> None:
    assert (
        body["received"] == 2
        and body["recorded"] + body["duplicates"] == 1
        and body["rejected"] == 1
    )


def _init_models(body: Any, stack: Stack) -> None:
    assert body["user_id"] == stack.user_id
    steps = {step["name"]: step["status"] for step in body["steps"]}
    assert steps and all(status in ("ok", "skipped") for status in steps.values()), body


def _job(body: Any, stack: Stack) -> None:
    assert body["state"] in ("idle", "queued", "running", "waiting", "succeeded", "failed"), body


@dataclass(frozen=True)
class Route:
    service: str
    method: str
    path: str  # {user}, {track}, {unknown_user}, {unknown_track} are filled in
    status: tuple[int, ...]
    body: dict[str, Any] | None = None
    admin: bool = False
    anonymous: bool = False  # no credential at all (else the app credential)
    check: Callable[[Any, Stack], None] | None = None
    id: str = field(default="", compare=False)


def _event_batch(stack: Stack) -> dict[str, Any]:
    event = {
        "event_id": uuid.uuid4().hex,
        "user_id": stack.user_id,
        "track_id": stack.track_id,
        "kind": "play",
    }
    return {"events": [event, {**event, "event_id": uuid.uuid4().hex, "track_id": UNKNOWN_TRACK}]}


ROUTES = [
    # m1
    Route(
        "m1",
        "POST",
        "/api/m1/train",
        (200,),
        {"user_id": "{user}"},
        check=_has("user_id", "model", "tracks_used"),
        id="m1-train",
    ),
    Route(
        "m1",
        "POST",
        "/api/m1/recommend",
        (200,),
        {"user_id": "{user}", "limit": 5},
        check=_recommendation(5),
        id="m1-recommend",
    ),
    Route(
        "m1",
        "GET",
        "/api/m1/status/{user}",
        (200,),
        check=_has("user_id", "trained", "fallback", "version"),
        id="m1-status",
    ),
    Route(
        "m1",
        "POST",
        "/api/m1/recommend",
        (404,),
        {"user_id": "{unknown_user}"},
        id="m1-recommend-unknown-user",
    ),
    Route("m1", "POST", "/api/m1/recommend", (422,), {"user_id": -1}, id="m1-recommend-bad-user"),
    Route("m1", "GET", "/api/m1/status/not-a-number", (422,), id="m1-status-bad-user"),
    # m2
    Route(
        "m2",
        "POST",
        "/api/m2/predict-audio",
        (200,),
        {
            "items": [
                {"track_id": "{track}"},
                {"track_id": "{unknown_track}"},
                {"artist": "Daft Punk", "title": "One More Time", "genre": "edm"},
            ]
        },
        check=_predictions,
        id="m2-predict-audio",
    ),
    Route(
        "m2", "POST", "/api/m2/predict-audio", (422,), {"items": []}, id="m2-predict-audio-empty"
    ),
    Route("m2", "GET", "/api/m2/similar/{track}?limit=5", (200,), check=_similar, id="m2-similar"),
    Route("m2", "GET", "/api/m2/similar/{unknown_track}", (404,), id="m2-similar-unknown-track"),
    Route(
        "m2",
        "POST",
        "/api/m2/recommend",
        (200,),
        {"user_id": "{user}", "limit": 5},
        check=_recommendation(5),
        id="m2-recommend",
    ),
    Route(
        "m2",
        "POST",
        "/api/m2/recommend",
        (404,),
        {"user_id": "{unknown_user}"},
        id="m2-recommend-unknown-user",
    ),
    # m3
    Route(
        "m3",
        "POST",
        "/api/m3/train",
        (200,),
        {"user_id": "{user}"},
        check=_has("user_id", "model"),
        id="m3-train",
    ),
    Route(
        "m3",
        "POST",
        "/api/m3/recommend",
        (200,),
        {"user_id": "{user}", "limit": 5},
        check=_recommendation(5),
        id="m3-recommend",
    ),
    Route(
        "m3",
        "POST",
        "/api/m3/recommend",
        (404,),
        {"user_id": "{unknown_user}"},
        id="m3-recommend-unknown-user",
    ),
    Route(
        "m3",
        "POST",
        "/api/m3/events",
        (200,),
        {"events": "{events}"},
        check=_events,
        id="m3-events",
    ),
    # llm
    Route(
        "llm",
        "POST",
        "/api/llm/search",
        (200,),
        {"query": "energetic dance pop for a party", "limit": 5},
        check=_search,
        id="llm-search",
    ),
    Route(
        "llm",
        "POST",
        "/api/llm/search",
        (200,),
        {"query": "새벽 드라이브에 어울리는 신스팝", "limit": 5},
        check=_search,
        id="llm-search-korean",
    ),
    Route(
        "llm",
        "POST",
        "/api/llm/search",
        (422,),
        {"query": "", "limit": 5},
        id="llm-search-empty-query",
    ),
    Route(
        "llm",
        "POST",
        "/api/llm/recommend",
        (200,),
        {"user_id": "{user}", "query": "calm acoustic evening", "limit": 5},
        check=_search_recommendation,
        id="llm-recommend",
    ),
    Route(
        "llm",
        "POST",
        "/api/llm/recommend",
        (404,),
        {"user_id": "{unknown_user}", "query": "calm acoustic evening", "limit": 5},
        id="llm-recommend-unknown-user",
    ),
    # enrichment
    Route(
        "enrichment",
        "POST",
        "/api/init-models",
        (401,),
        {"user_id": "{user}"},
        anonymous=True,
        id="init-models-without-key",
    ),
    Route(
        "enrichment",
        "POST",
        "/api/init-models",
        (200,),
        {"user_id": "{user}"},
        check=_init_models,
        id="init-models",
    ),
    Route(
        "enrichment", "POST", "/api/enrich-all", (401,), anonymous=True, id="enrich-all-without-key"
    ),
    Route("enrichment", "POST", "/api/enrich-all", (403,), id="enrich-all-with-app-credential"),
    Route(
        "enrichment", "POST", "/api/enrich-all", (200, 202), admin=True, check=_job, id="enrich-all"
    ),
    Route("enrichment", "GET", "/api/enrich-status", (200,), check=_job, id="enrich-status"),
    # recommend
    Route(
        "recommend",
        "POST",
        "/api/recommend",
        (200,),
        {"user_id": "{user}", "limit": 5},
        check=_blended,
        id="recommend",
    ),
    Route(
        "recommend",
        "POST",
        "/api/recommend",
        (404,),
        {"user_id": "{unknown_user}"},
        id="recommend-unknown-user",
    ),
    Route(
        "recommend",
        "POST",
        "/api/recommend",
        (422,),
        {"user_id": "{user}", "cursor": "x"},
        id="recommend-unknown-field",
    ),
]


def _fill(value: Any, stack: Stack) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, stack) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, stack) for v in value]
    if value == "{user}":
        return stack.user_id
    if value == "{unknown_user}":
        return UNKNOWN_USER
    if value == "{events}":
        return _event_batch(stack)["events"]
    if isinstance(value, str):
        return value.format(
            user=stack.user_id,
            track=stack.track_id,
            unknown_user=UNKNOWN_USER,
            unknown_track=UNKNOWN_TRACK,
        )
    return value


@pytest.mark.parametrize("route", ROUTES, ids=[r.id for r in ROUTES])
def test_public_route_through_gateway(stack: Stack, route: Route) -> None:
    stack.require(route.service)
    headers = stack.admin if route.admin else {} if route.anonymous else stack.app
    with stack.client() as client:
        response = client.request(
            route.method, _fill(route.path, stack), json=_fill(route.body, stack), headers=headers
        )
    log = stack.services[route.service].tail(30) if response.status_code >= 500 else ""
    assert response.status_code in route.status, (
        f"{route.method} {route.path}: {response.status_code} {response.text[:500]}\n{log}"
    )
    assert response.headers["content-type"].startswith(
        ("application/json", "application/problem+json")
    )
    if route.check is not None:
        route.check(response.json(), stack)


@pytest.mark.parametrize("prefix", ["", "/api/m1/..", "/api/m2/../.."])
def test_ops_routes_are_not_reachable_through_gateway(stack: Stack, prefix: str) -> None:
    with stack.client() as client:
        for path in OPS_PATHS:
            response = client.get(prefix + path)
            assert response.status_code == 404, (prefix + path, response.text[:200])
            assert "musicspace_http_requests_total" not in response.text


def test_ops_routes_still_answer_on_the_service_port(stack: Stack) -> None:
    """The gateway hides them; Prometheus and health checks reach them directly."""
    ready = [name for name in stack.services if name not in stack.unavailable]
    assert ready, "no service became ready"
    for name in ready:
        assert httpx.get(stack.services[name].url + "/metrics", timeout=10).status_code in (
            200,
            401,
            403,
        )
        assert httpx.get(stack.services[name].url + "/healthz", timeout=10).status_code == 200


def test_security_headers_on_every_answer(stack: Stack) -> None:
    stack.require("m1")
    with stack.client() as client:
        for response in (
            client.get(f"/api/m1/status/{stack.user_id}", headers=stack.app),
            client.post("/api/m1/recommend", json={"user_id": -1}, headers=stack.app),
            client.get(f"/api/m1/status/{stack.user_id}"),  # 401
        ):
            headers = response.headers
            assert headers["strict-transport-security"].startswith("max-age=31536000")
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["x-frame-options"] == "DENY"
            assert "default-src 'none'" in headers["content-security-policy"]
            assert headers["referrer-policy"] == "no-referrer"
            assert "server" not in headers, "the server software is not advertised"
            assert headers.get("x-request-id"), "the service's request id comes back"


def test_request_id_from_the_client_is_kept(stack: Stack) -> None:
    stack.require("m1")
    with stack.client() as client:
        response = client.get(
            f"/api/m1/status/{stack.user_id}", headers={"X-Request-ID": "e2e-trace-42", **stack.app}
        )
    assert response.headers["x-request-id"] == "e2e-trace-42"


def test_body_over_the_limit_is_rejected_with_413(stack: Stack) -> None:
    """Traefik buffers and refuses the body itself: no service sees it (so none must be ready)."""
    event = '{"event_id": "e", "user_id": 1, "track_id": "t", "kind": "play"},'
    huge = ('{"events": [' + event * 20_000 + event[:-1] + "]}").encode()
    assert len(huge) > 1024 * 1024
    with stack.client() as client:
        response = client.post(
            "/api/m3/events", content=huge, headers={"content-type": "application/json"}
        )
    assert response.status_code == 413


def test_unknown_api_path_is_404_at_the_gateway(stack: Stack) -> None:
    with stack.client() as client:
        assert client.get("/api/nope").status_code == 404
        assert client.get("/api/m1x/status/1").status_code == 404


def test_rate_limit_answers_429_when_exceeded(stack: Stack, tmp_path: Path) -> None:
    """A second gateway over the same services with a low limit: 1 request/s, bursts of 3."""
    stack.require("m1")
    static, gateway_port, ops_port = stack.render_gateway(tmp_path, rate_average=1, rate_burst=3)
    log = tmp_path / "traefik.log"
    with running_traefik(static, ops_port=ops_port, log_path=log):
        with httpx.Client(
            base_url=f"https://127.0.0.1:{gateway_port}", verify=False, timeout=30
        ) as client:
            statuses = [
                client.get(f"/api/m1/status/{stack.user_id}").status_code for _ in range(12)
            ]
    assert statuses[0] != 429
    assert 429 in statuses, statuses
    assert error_lines(log.read_text()) == []


def test_gateway_metrics_count_routed_requests(stack: Stack) -> None:
    stack.require("m1")
    with stack.client() as client:
        client.get(f"/api/m1/status/{stack.user_id}")
    metrics = httpx.get(
        f"http://127.0.0.1:{stack.env['GATEWAY_OPS_PORT']}/metrics", timeout=10
    ).text
    assert "traefik_service_requests_total{" in metrics and 'service="m1@file"' in metrics
