"""Scaled services: the gateway and enrichment spread work over every replica; llm replicas agree."""

from __future__ import annotations

from tests.containers.compose_stack import ComposeStack


def test_gateway_spreads_requests_over_every_m1_and_m2_replica(
    compose_stack: ComposeStack, demo_users: list[int]
) -> None:
    m1, m2 = compose_stack.containers("m1"), compose_stack.containers("m2")
    assert (len(m1), len(m2)) == (3, 2)
    before = {c: compose_stack.requests_served(c, "/api/m1/recommend") for c in m1}
    before |= {c: compose_stack.requests_served(c, "/api/m2/recommend") for c in m2}
    with compose_stack.client() as client:
        for user_id in demo_users[:30]:
            for service in ("m1", "m2"):
                response = client.post(
                    f"/api/{service}/recommend", json={"user_id": user_id, "limit": 5}
                )
                assert response.status_code == 200, response.text
    served = {c: compose_stack.requests_served(c, "/api/m1/recommend") - before[c] for c in m1}
    served |= {c: compose_stack.requests_served(c, "/api/m2/recommend") - before[c] for c in m2}
    compose_stack.report(f"requests per replica: {served}")
    assert all(count >= 5 for count in served.values()), served
    assert sum(served[c] for c in m1) == 30 and sum(served[c] for c in m2) == 30


def test_enrichment_spreads_predict_audio_calls_over_every_m2_replica(
    compose_stack: ComposeStack, demo_users: list[int]
) -> None:
    m2 = compose_stack.containers("m2")
    before = {c: compose_stack.requests_served(c, "/api/m2/predict-audio") for c in m2}
    headers = {"X-API-Key": compose_stack.admin_key}
    with compose_stack.client(headers=headers) as client:
        for user_id in demo_users[:6]:
            response = client.post("/api/init-models", json={"user_id": user_id})
            assert response.status_code == 200, response.text
    served = {c: compose_stack.requests_served(c, "/api/m2/predict-audio") - before[c] for c in m2}
    compose_stack.report(f"predict-audio calls per m2 replica: {served}")
    assert all(count >= 1 for count in served.values()), served


def test_two_llm_replicas_answer_the_same_search_identically(compose_stack: ComposeStack) -> None:
    llm = compose_stack.containers("llm")
    assert len(llm) == 2
    before = {c: compose_stack.requests_served(c, "/api/llm/search") for c in llm}
    query = {"query": "calm acoustic songs for a rainy evening", "limit": 10}
    with compose_stack.client() as client:
        answers = [client.post("/api/llm/search", json=query) for _ in range(8)]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    served = {c: compose_stack.requests_served(c, "/api/llm/search") - before[c] for c in llm}
    assert all(count >= 1 for count in served.values()), served
    ranked = {tuple(item["track_id"] for item in a.json()["items"]) for a in answers}
    assert len(ranked) == 1 and len(next(iter(ranked))) == 10, ranked


def test_erasure_reaches_every_replica_of_every_service_holding_user_state(
    compose_stack: ComposeStack,
) -> None:
    """DELETE /api/users/{id}: enrichment resolves each service's name to every replica's
    address and asks each to forget the user (m1 x3, m2 x2, m3, llm x2)."""
    tracks = [
        row[0]
        for row in compose_stack.sql(
            "SELECT track_id FROM track WHERE features_source = 'measured' "
            "ORDER BY track_id LIMIT 15"
        )
    ]
    user = 7_777_000_001
    library = {"mode": "replace", "tracks": [{"track_id": t} for t in tracks]}
    with compose_stack.client() as client:
        assert client.put(f"/api/users/{user}", json={}).status_code in (200, 201)
        assert client.put(f"/api/users/{user}/library", json=library).status_code == 200
        assert client.post("/api/init-models", json={"user_id": user}).status_code == 200
        for _ in range(9):  # answers cached on the m1 replicas the gateway picked
            client.post("/api/m1/recommend", json={"user_id": user, "limit": 5})
        erased = client.delete(f"/api/users/{user}")
    assert erased.status_code == 200, erased.text
    instances: dict[str, set[str]] = {}
    for report in erased.json()["services"]:
        instances.setdefault(report["service"], set()).add(report["instance"])
    counts = {service: len(found) for service, found in instances.items()}
    compose_stack.report(f"erasure: replicas asked per service: {counts}")
    assert counts == {"m1": 3, "m2": 2, "m3": 1, "llm": 2}, instances
    for container in compose_stack.containers("m1"):
        assert compose_stack.requests_served(container, "/admin/users/{user_id}") >= 1
    assert compose_stack.sql(f"SELECT COUNT(*) FROM user_track WHERE user_id = {user}") == [["0"]]
