"""The stack file (stack.yaml's render) of the real images on a single-node Docker Swarm.

The stack runs as its own stack name (`musicspace-swarm-test`) on a free gateway port, with its
own secrets, certificate and a Traefik static config whose swarm provider routes only this
stack's services. It deploys in two steps: the database and the bootstrap job (migrations,
demo import, m1's global model: `--only m1`), then m1 x3 and Traefik. Nothing else runs:
the other services' images are the compose tests' business; here the swarm mechanics are.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field

import yaml

from deploy import render_stack
from tests.containers.compose_stack import DOCKER, ROOT, EngineStack

STACK = "musicspace-swarm-test"
FIRST = ["mariadb", "bootstrap"]
SECOND = [*FIRST, "m1", "traefik"]


def swarm_problem() -> str | None:
    """None when this engine can run a stack (inactive: the test inits a swarm and leaves it)."""
    out = subprocess.run(
        [DOCKER, "info", "--format", "{{json .Swarm}}"], capture_output=True, text=True, timeout=20
    )
    swarm = json.loads(out.stdout or "{}")
    state = swarm.get("LocalNodeState")
    if state == "inactive":
        return None
    if state == "active" and swarm.get("ControlAvailable"):
        return None
    return f"this engine is in a swarm it cannot deploy to (state {state!r}, not a manager)"


@dataclass
class SwarmStack(EngineStack):
    name: str = STACK
    deployed_at: dict[str, float] = field(default_factory=dict)

    def service(self, short: str) -> str:
        return f"{self.name}_{short}"

    def deploy(self, services: list[str]) -> None:
        """`docker stack deploy` of compose.yaml's render for `services` (from stdin: relative
        file paths resolve against the repository, as for stack.yaml)."""
        stack = render_stack.render(render_stack.load_compose(), services)
        if "bootstrap" in stack["services"]:
            stack["services"]["bootstrap"]["command"] += ["--only", "m1"]
        result = subprocess.run(
            [DOCKER, "stack", "deploy", "--resolve-image", "never", "-c", "-", self.name],
            input=yaml.safe_dump(stack, sort_keys=False),
            cwd=ROOT,
            env=os.environ | self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(f"stack deploy failed: {result.stderr[-3000:]}")

    def containers(self, short: str) -> list[str]:
        """Running containers of one service's tasks (a single node: all of them are here)."""
        out = self.docker(
            "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={self.service(short)}"
        )
        return sorted(out.split())

    def task_states(self, short: str) -> list[str]:
        """Each task's state; none while the engine does not answer within 30 s (a loaded
        machine's daemon once took minutes over one `service ps`): the waits ask again."""
        try:
            out = self.docker(
                "service",
                "ps",
                "--no-trunc",
                "--format",
                "{{.CurrentState}}|{{.Error}}",
                self.service(short),
                timeout=30,
            )
        except subprocess.TimeoutExpired:
            return []
        return [line for line in out.splitlines() if line.strip()]

    def wait_completed(self, short: str, timeout_s: float) -> None:
        """A one-shot service (restart on failure only) whose task exited 0."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            states = self.task_states(short)
            if any(state.startswith("Complete") for state in states):
                return
            if sum(state.startswith("Failed") for state in states) >= 6:
                break  # a minute of retries: the database is long up, the failure is real
            time.sleep(3)
        logs = self.logs(short)
        raise RuntimeError(f"{short} did not complete: {states}\n{logs[-3000:]}")

    def wait_running(self, short: str, count: int, timeout_s: float = 300) -> None:
        """`count` tasks running: with a health check, swarm says running only once healthy."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            states = self.task_states(short)
            running = [s for s in states if s.startswith("Running")]
            if len(running) >= count and len(self.containers(short)) == count:
                return
            time.sleep(2)
        raise TimeoutError(
            f"{short}: fewer than {count} running tasks after {timeout_s}s: {states}"
        )

    def wait_update(self, service: str, timeout_s: float) -> str:
        """The service's update state once it is no longer `updating` (or at the timeout)."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.docker("service", "inspect", "-f", "{{.UpdateStatus.State}}", service)
            if state.strip() != "updating" or time.monotonic() > deadline:
                return state.strip()
            time.sleep(1)

    def gateway_retries(self) -> float:
        """Requests Traefik's retry middleware sent again (its metrics on the ops entry point,
        read from a throwaway container on the stack's attachable network)."""
        out = self.docker(
            "run", "--rm", "--network", f"{self.name}_backend", "musicspace/cli:latest",
            "python", "-c",
            "import urllib.request as u; print(u.urlopen('http://traefik:8082/metrics').read().decode())",
        )  # fmt: skip
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in out.splitlines()
            if line.startswith("traefik_service_retries_total{")
        )

    def logs(self, short: str) -> str:
        """Every task container's log (`docker service logs` of engine 20.10 may never return)."""
        label = f"label=com.docker.swarm.service.name={self.service(short)}"
        text = []
        for container in self.docker("ps", "-aq", "--filter", label, check=False).split():
            result = subprocess.run(
                [DOCKER, "logs", container], capture_output=True, text=True, timeout=60
            )
            text.append(f"--- {container}\n{result.stdout}{result.stderr}")
        return "\n".join(text)

    def sql(self, query: str) -> list[list[str]]:
        (container,) = self.containers("mariadb")
        out = self.docker(
            "exec",
            container,
            "sh",
            "-c",
            'mariadb -umusicspace -p"$(cat /run/secrets/db_password)" musicspace -N -B -e "$0"',
            query,
        )
        return [line.split("\t") for line in out.splitlines() if line]

    def remove(self) -> None:
        """The stack, then its volumes (`docker stack rm` keeps volumes) once no task uses them."""
        self.docker("stack", "rm", self.name, check=False)
        label = f"label=com.docker.stack.namespace={self.name}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            left = self.docker("ps", "-aq", "--filter", label).split()
            left += self.docker("network", "ls", "-q", "--filter", label).split()
            if not left:
                break
            time.sleep(2)
        for volume in self.docker("volume", "ls", "-q", "--filter", label).split():
            self.docker("volume", "rm", volume, check=False)
