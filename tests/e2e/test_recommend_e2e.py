"""/api/recommend through the gateway: the blend, an answer with m3 stopped, and events that
refer to an answer counted at m3's events route."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from musicspace_shared.recommendation_ids import parse
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.mariadb]


def _recommend(http: httpx.Client, stack: Stack) -> dict:
    response = http.post(
        "/api/recommend", json={"user_id": stack.user_id, "limit": 10}, headers=stack.app
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["items"] and all(0 <= item["score"] <= 1 for item in body["items"])
    return body


def _wait_routed_again(http: httpx.Client, stack: Stack, timeout_s: float = 60) -> None:
    """Traefik's health check (every 5 s) took the stopped m3 out of rotation: wait until the
    gateway routes to the restarted one, so the tests after this one find it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        probe = http.post("/api/m3/recommend", json={"user_id": stack.user_id}, headers=stack.app)
        if probe.status_code != 503:
            return
        time.sleep(0.5)
    raise TimeoutError("the gateway does not route to the restarted m3")


def test_recommend_blends_and_still_answers_with_m3_stopped(stack: Stack) -> None:
    for service in ("recommend", "m1", "m2", "m3"):
        stack.require(service)
    m3 = stack.services["m3"]
    with stack.client() as http:
        body = _recommend(http, stack)
        assert "m3" in body["models"] and parse(body["recommendation_id"]).arm == body["arm"]
        m3.stop()
        try:
            without = _recommend(http, stack)
        finally:
            m3.start()
            m3.wait_ready(timeout_s=180)
            _wait_routed_again(http, stack)
    outcome = next(o for o in without["outcomes"] if o["model"] == "m3")
    assert outcome["status"] == "unavailable", outcome
    assert "m3" not in without["models"] and without["models"], without["outcomes"]


def test_events_naming_an_answer_are_recorded_and_counted(stack: Stack) -> None:
    for service in ("recommend", "m3"):
        stack.require(service)
    with stack.client() as http:
        body = _recommend(http, stack)
        rid, shown = body["recommendation_id"], body["items"][0]["track_id"]
        events = [
            {
                "event_id": uuid.uuid4().hex,
                "user_id": stack.user_id,
                "track_id": shown,
                "kind": kind,
                "recommendation_id": rid,
            }
            for kind in ("impression", "click")
        ]
        response = http.post("/api/m3/events", json={"events": events}, headers=stack.app)
    assert response.status_code == 200 and response.json()["recorded"] == 2, response.text
    parsed = parse(rid)
    metrics = httpx.get(stack.services["m3"].url + "/metrics", timeout=10).text
    # The exposition lists labels in alphabetical order.
    feedback = f'arm="{parsed.arm}",kind="click",service="m3",source="{parsed.source}"'
    assert f"musicspace_feedback_events_total{{{feedback}}}" in metrics
    served = httpx.get(stack.services["recommend"].url + "/metrics", timeout=10).text
    answer = f'arm="{parsed.arm}",route="/api/recommend",service="recommend"'
    assert f'musicspace_recommendations_total{{{answer},source="{parsed.source}"}}' in served


def _m3_served(stack: Stack) -> float:
    text = httpx.get(stack.services["m3"].url + "/metrics", timeout=10).text
    labels = {"arm": "none", "route": "/api/m3/recommend", "service": "m3", "source": "m3"}
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "musicspace_recommendations_total" and sample.labels == labels
    )


def test_recommend_pages_through_the_gateway_and_model_routes_count_their_answers(
    stack: Stack,
) -> None:
    for service in ("recommend", "m1", "m2", "m3"):
        stack.require(service)
    body = {"user_id": stack.user_id, "max_per_artist": 2, "filters": {"min_year": 1900}}
    before = _m3_served(stack)
    with stack.client() as http:
        whole = http.post("/api/recommend", json=body | {"limit": 24}, headers=stack.app).json()
        paged, cursor = [], None
        for _ in range(3):
            page = body | {"limit": 8} | ({"cursor": cursor} if cursor else {})
            answer = http.post("/api/recommend", json=page, headers=stack.app)
            assert answer.status_code == 200, answer.text
            paged += [item["track_id"] for item in answer.json()["items"]]
            cursor = answer.json()["next_cursor"]
        direct = http.post("/api/m3/recommend", json={"user_id": stack.user_id}, headers=stack.app)
        assert direct.status_code == 200, direct.text
    assert "m3" in whole["models"]
    assert paged == [item["track_id"] for item in whole["items"]] and len(paged) == 24
    # Only the direct call: the calls /api/recommend made are not answers shown to a user.
    assert _m3_served(stack) == before + 1
