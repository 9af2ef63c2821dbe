"""Model volumes: a user model outlives restarts and down/up; `make compose-down VOLUMES=1` deletes it.

Runs last (it takes the stack down): the file sorts after the others.
"""

from __future__ import annotations

import os
import subprocess

from tests.containers.compose_stack import ROOT, SCALE, ComposeStack


def _status(stack: ComposeStack, user: int) -> dict:
    with stack.client() as client:
        response = client.get(f"/api/m1/status/{user}")
    assert response.status_code == 200, response.text
    return response.json()


def test_a_user_model_survives_restart_and_down_up_and_volume_removal_deletes_it(
    compose_stack: ComposeStack, demo_users: list[int]
) -> None:
    user = demo_users[1]
    with compose_stack.client() as client:
        trained = client.post("/api/m1/train", json={"user_id": user})
    assert trained.status_code == 200, trained.text
    version = _status(compose_stack, user)["version"]
    assert version and _status(compose_stack, user)["trained"]

    compose_stack.compose("restart", "m1")
    compose_stack.wait_healthy("m1", SCALE["m1"])
    compose_stack.wait_routed(f"/api/m1/status/{user}")
    assert _status(compose_stack, user)["version"] == version

    compose_stack.compose("down")
    compose_stack.up(timeout_s=600)
    assert _status(compose_stack, user)["version"] == version

    volumes = [
        "volume",
        "ls",
        "-q",
        "--filter",
        f"label=com.docker.compose.project={compose_stack.env['COMPOSE_PROJECT_NAME']}",
    ]
    assert "m1-models" in compose_stack.docker(*volumes)
    down = subprocess.run(
        ["make", "compose-down", "VOLUMES=1"],
        cwd=ROOT,
        env=os.environ | compose_stack.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert down.returncode == 0, down.stderr
    assert compose_stack.docker(*volumes).split() == []
    assert compose_stack.compose("ps", "--all", "-q").split() == []
