"""`make swarm-deploy`, the README's command, over the stack the m1 tests leave: the whole of
stack.yaml comes up on the swarm and every public route answers through the gateway.

Runs after test_swarm.py (file order). The stack then holds MariaDB, the bootstrap job that
ran `--only m1`, m1 x3 and Traefik; the command deploys the rest as an operator does (one
`docker stack deploy` of the committed stack file: no `depends_on` in a swarm), the bootstrap
job runs again in full (every model, the llm index) and the services it had not trained for
are restarted by swarm until they are healthy, as the README says.
"""

from __future__ import annotations

import os
import subprocess
import time

import yaml

from tests.containers.compose_stack import ROOT
from tests.swarm.swarm_stack import SwarmStack

STACK_FILE = ROOT / "stack.yaml"
ONE_SHOT = {"bootstrap"}  # runs to completion; the other services keep running


def test_make_swarm_deploy_brings_up_the_whole_stack_and_every_route(
    swarm_stack: SwarmStack, demo_users: list[int]
) -> None:
    started = time.monotonic()
    deploy = subprocess.run(
        ["make", "swarm-deploy", f"STACK_NAME={swarm_stack.name}"],
        cwd=ROOT,
        env=os.environ | swarm_stack.env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert deploy.returncode == 0, deploy.stdout[-2000:] + deploy.stderr[-3000:]
    services = yaml.safe_load(STACK_FILE.read_text())["services"]
    deployed = set(
        swarm_stack.docker("stack", "services", "--format", "{{.Name}}", swarm_stack.name).split()
    )
    assert deployed == {swarm_stack.service(short) for short in services}
    for short, spec in services.items():
        if short not in ONE_SHOT:
            replicas = int(spec.get("deploy", {}).get("replicas", 1))
            swarm_stack.wait_running(short, replicas, timeout_s=1500)
    swarm_stack.report(
        f"phase make swarm-deploy to every service healthy: {time.monotonic() - started:.0f} s"
    )
    user = demo_users[-1]
    track_id = swarm_stack.sql(
        "SELECT track_id FROM track WHERE features_source = 'measured' LIMIT 1"
    )[0][0]
    # Traefik polls the swarm every 5 s and health-checks each replica before it routes to it.
    for path in (f"/api/m2/similar/{track_id}", "/api/llm/index/status", f"/api/users/{user}"):
        _wait_ok(swarm_stack, path, timeout_s=300)
    assert swarm_stack.failed_public_calls(user, track_id) == []


def _wait_ok(stack: SwarmStack, path: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last = ""
    with stack.client() as client:
        while time.monotonic() < deadline:
            response = client.get(path)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
            time.sleep(2)
    raise TimeoutError(f"{path} not answered 200 after {timeout_s} s: {last}")
