"""The swarm test's stack: the images `make images` built (the compose tests' own, when they ran
first), deployed with `docker stack deploy` on a single-node swarm of this engine.

Marked `containers` and `swarm`, and moved after every other test: in `make test` it runs
after the compose tests, whose stack is down by then (their fixture is package-scoped).
Without an engine it skips with the reason. A swarm it initialised, it leaves at the end;
its stack, secrets, configs, network and volumes are removed whatever happened.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from deploy import gen_cert, gen_secrets, render_stack
from tests.containers.compose_stack import DOCKER, ROOT, build_images, engine_problem
from tests.processes import free_port
from tests.swarm.swarm_stack import FIRST, SECOND, STACK, SwarmStack, swarm_problem

HERE = Path(__file__).parent
FINDINGS: list[str] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    ours = [item for item in items if Path(str(item.fspath)).parent == HERE]
    for item in ours:
        item.add_marker(pytest.mark.containers)
        item.add_marker(pytest.mark.swarm)
        item.add_marker(pytest.mark.slow)
    items[:] = [item for item in items if item not in ours] + ours


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FINDINGS:
        terminalreporter.section("swarm test: what it measured")
        for line in FINDINGS:
            terminalreporter.write_line(line)


def _images_env() -> dict[str, str]:
    """var/images.env (make images): the base images' names for the stack file's `${...}`."""
    path = ROOT / "var" / "images.env"
    lines = path.read_text().splitlines() if path.is_file() else []
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


@pytest.fixture(scope="package")
def swarm_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwarmStack]:
    problem = engine_problem() or swarm_problem()
    if problem:
        pytest.skip(f"swarm test skipped: {problem}")
    tmp = tmp_path_factory.mktemp("swarm")
    began = time.monotonic()
    images_s, _ = build_images()
    gen_secrets.generate(out_dir=tmp / "secrets")
    gen_cert.generate(out_dir=tmp / "certs")
    static = render_stack.traefik_swarm_static(
        yaml.safe_load(render_stack.TRAEFIK_STATIC.read_text()), STACK
    )
    (tmp / "traefik.yml").write_text(yaml.safe_dump(static))
    stack = SwarmStack(
        env=_images_env()
        | {
            "GATEWAY_PORT": str(free_port()),
            "SECRETS_DIR": str(tmp / "secrets"),
            "CERTS_DIR": str(tmp / "certs"),
            "TRAEFIK_STATIC_CONFIG": str(tmp / "traefik.yml"),
        },
        gateway_port=0,
        admin_key=(tmp / "secrets" / "admin_api_key").read_text(),
        app_key=(tmp / "secrets" / "app_api_key").read_text(),
        log_dir=tmp,
        findings=FINDINGS,
    )
    stack.gateway_port = int(stack.env["GATEWAY_PORT"])
    stack.report(f"phase images (make images): {images_s:.0f} s")
    initialised = False
    # `swarm init` creates the docker_gwbridge network and `swarm leave` keeps it.
    networks_before = set(stack.docker("network", "ls", "--format", "{{.Name}}").split())
    if stack.docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip() == "inactive":
        init = subprocess.run([DOCKER, "swarm", "init"], capture_output=True, text=True)
        if init.returncode != 0:  # several addresses: any one serves a single node
            stack.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        initialised = True
    stack.remove()  # an interrupted earlier run
    try:
        started = time.monotonic()
        stack.deploy(FIRST)
        stack.wait_completed("bootstrap", timeout_s=900)
        stack.report(f"phase database + bootstrap (--only m1): {time.monotonic() - started:.0f} s")
        started = time.monotonic()
        stack.deploy(SECOND)
        stack.wait_running("m1", 3)
        stack.wait_running("traefik", 1)
        stack.wait_routed("/api/m1/status/1", timeout_s=180)
        stack.report(f"phase m1 x3 + traefik up and routed: {time.monotonic() - started:.0f} s")
        yield stack
    finally:
        for short in SECOND:
            try:
                (tmp / f"{short}.log").write_text(stack.logs(short))
            except (OSError, subprocess.SubprocessError) as exc:
                (tmp / f"{short}.log").write_text(f"no logs: {exc}")
        started = time.monotonic()
        try:
            stack.remove()
        finally:
            if initialised:
                stack.docker("swarm", "leave", "--force", check=False)
                if "docker_gwbridge" not in networks_before:
                    stack.docker("network", "rm", "docker_gwbridge", check=False)
        stack.report(f"phase stack rm + volumes: {time.monotonic() - started:.0f} s")
        stack.report(f"swarm test in all: {time.monotonic() - began:.0f} s (logs: {tmp})")


@pytest.fixture(scope="package")
def demo_users(swarm_stack: SwarmStack) -> list[int]:
    rows = swarm_stack.sql(
        "SELECT user_id FROM user_track GROUP BY user_id HAVING COUNT(*) >= 10 "
        "ORDER BY user_id LIMIT 40"
    )
    users = [int(row[0]) for row in rows]
    assert len(users) >= 20, users
    return users
