"""m1 x3 as a swarm service: one model store for every replica, and a rolling update under load.

The model test runs first (file order): the update test then checks the user model outlives
the replacement of every replica.
"""

from __future__ import annotations

import json
import time

import httpx

from tests.containers.steady_load import SteadyLoad
from tests.swarm.swarm_stack import SwarmStack

USER_MODEL: dict[str, object] = {}  # the model the first test trained (user, version)


def _status(stack: SwarmStack, container: str, user: int) -> dict[str, object]:
    return stack.internal_json(container, "GET", f"/api/m1/status/{user}")


def test_a_user_model_trained_through_one_replica_is_seen_by_every_replica(
    swarm_stack: SwarmStack, demo_users: list[int]
) -> None:
    replicas = swarm_stack.containers("m1")
    assert len(replicas) == 3
    user = demo_users[3]
    assert not any(_status(swarm_stack, c, user)["trained"] for c in replicas)
    before = {c: swarm_stack.requests_served(c, "/api/m1/train") for c in replicas}
    trained = swarm_stack.internal_json(replicas[0], "POST", "/api/m1/train", {"user_id": user})
    served = {c: swarm_stack.requests_served(c, "/api/m1/train") - before[c] for c in replicas}
    assert served == {replicas[0]: 1, replicas[1]: 0, replicas[2]: 0}, served
    seen = {c: _status(swarm_stack, c, user) for c in replicas}
    versions = {c: status["version"] for c, status in seen.items()}
    swarm_stack.report(f"user {user} trained on {replicas[0][:12]}: versions seen {versions}")
    assert all(status["trained"] for status in seen.values()), seen
    assert len(set(versions.values())) == 1 and None not in versions.values(), (trained, seen)

    # One named volume behind every replica, with the driver options an operator points at NFS.
    volume = f"{swarm_stack.name}_m1-models"
    mounts = {
        c: [
            m["Name"]
            for m in json.loads(swarm_stack.docker("inspect", "-f", "{{json .Mounts}}", c))
        ]
        for c in replicas
    }
    assert all(names == [volume] for names in mounts.values()), mounts
    options = json.loads(swarm_stack.docker("volume", "inspect", "-f", "{{json .Options}}", volume))
    assert set(options) == {"type", "o", "device"}, options
    USER_MODEL.update(user=user, version=versions[replicas[0]])


def test_rolling_update_of_m1_under_steady_load_fails_no_request(
    swarm_stack: SwarmStack, demo_users: list[int]
) -> None:
    old = swarm_stack.containers("m1")
    service = swarm_stack.service("m1")
    retries_before = swarm_stack.gateway_retries()

    def recommend(client: httpx.Client, i: int) -> httpx.Response:
        user = demo_users[i % len(demo_users)]
        return client.post("/api/m1/recommend", json={"user_id": user, "limit": 5})

    with SteadyLoad(swarm_stack.client, recommend, rate=20) as load:
        time.sleep(3)
        began = time.monotonic()
        # A new environment value: a new task spec, so every replica is replaced in turn.
        swarm_stack.docker("service", "update", "--env-add", "ROLLOUT=2", service, timeout=900)
        # The CLI returns once the tasks converged; the update ends after its monitor period.
        state = swarm_stack.wait_update(service, timeout_s=120)
        update_s = time.monotonic() - began
        time.sleep(3)
    new = swarm_stack.containers("m1")
    failures = load.failures()
    retried = swarm_stack.gateway_retries() - retries_before
    swarm_stack.report(
        f"rolling update of m1 (3 replicas, start-first) under 20 req/s: {len(load.outcomes)} "
        f"requests, {len(failures)} failed, {retried:.0f} retried by the gateway, update took "
        f"{update_s:.0f} s (monitor period included)"
    )
    assert state == "completed", state
    assert len(new) == 3 and not set(new) & set(old), (old, new)
    assert len(load.outcomes) >= 20 * (update_s + 6) * 0.9
    assert failures == [], failures[:5]
    if USER_MODEL:  # the model store outlived every replica
        for container in new:
            status = _status(swarm_stack, container, int(USER_MODEL["user"]))  # type: ignore[call-overload]
            assert status["version"] == USER_MODEL["version"], status
