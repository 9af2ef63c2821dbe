"""The container tests' stack: real images, built here, on the real Docker engine.

Marked `containers` (selected by `make compose-test`, and part of `make test` whenever an
engine answers; without one they skip with the reason). One stack serves the whole session:
built with deploy/images/build.sh (what `make images` runs), started with m1 x3, m2 x2 and
llm x2, and removed at the end with its volumes and the dangling images of the build.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy import gen_cert, gen_secrets
from tests.containers.compose_stack import (
    DOCKER,
    PROJECT,
    ROOT,
    ComposeStack,
    build_images,
    engine_problem,
)
from tests.processes import free_port


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.containers)
            item.add_marker(pytest.mark.slow)


# What the container tests measured (phase times, requests per replica, failures under load),
# printed in pytest's summary so CI logs show it without -s.
FINDINGS: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FINDINGS:
        terminalreporter.section("container tests: what they measured")
        for line in FINDINGS:
            terminalreporter.write_line(line)


def _timed(stack: ComposeStack, phase: str, started: float) -> None:
    stack.timings[phase] = round(time.monotonic() - started, 1)
    stack.report(f"phase {phase}: {stack.timings[phase]:.0f} s")


@pytest.fixture(scope="package")  # down before the swarm test (tests/swarm) starts its stack
def compose_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeStack]:
    problem = engine_problem()
    if problem:
        pytest.skip(f"container tests skipped: {problem}")
    tmp = tmp_path_factory.mktemp("compose")
    images_s, built = build_images()

    gen_secrets.generate(out_dir=tmp / "secrets")
    gen_cert.generate(out_dir=tmp / "certs")
    static = (ROOT / "gateway" / "traefik.yml").read_text()
    assert "`com.docker.compose.project`,`musicspace`" in static
    static_path = tmp / "traefik.yml"
    static_path.write_text(static.replace("`musicspace`)", f"`{PROJECT}`)"))
    stack = ComposeStack(
        env={
            "COMPOSE_PROJECT_NAME": PROJECT,
            "GATEWAY_PORT": str(free_port()),
            "PROMETHEUS_PORT": str(free_port()),
            "SECRETS_DIR": str(tmp / "secrets"),
            "CERTS_DIR": str(tmp / "certs"),
            "TRAEFIK_STATIC_CONFIG": str(static_path),
        },
        gateway_port=0,
        admin_key=(tmp / "secrets" / "admin_api_key").read_text(),
        app_key=(tmp / "secrets" / "app_api_key").read_text(),
        log_dir=tmp,
        findings=FINDINGS,
    )
    for line in built:
        stack.report(f"image {line.strip()}")
    stack.timings["images"] = round(images_s, 1)
    stack.report(f"phase images (make images): {images_s:.0f} s")
    stack.gateway_port = int(stack.env["GATEWAY_PORT"])
    stack.compose("down", "--volumes", "--remove-orphans", check=False)  # an interrupted run
    try:
        started = time.monotonic()
        stack.up()
        _timed(stack, "compose up (bootstrap included)", started)
        for line in stack.compose(
            "logs", "--no-color", "--no-log-prefix", "bootstrap"
        ).splitlines():
            if line.startswith("<== "):
                stack.report(f"bootstrap {line[4:]}")
        yield stack
    finally:
        (tmp / "compose.log").write_text(stack.compose("logs", "--no-color", check=False))
        started = time.monotonic()
        stack.compose("down", "--volumes", "--remove-orphans", check=False)
        subprocess.run([DOCKER, "image", "prune", "-f"], capture_output=True, check=False)
        _timed(stack, "compose down --volumes", started)
        stack.report(f"compose logs: {tmp / 'compose.log'}")


@pytest.fixture(scope="package")
def demo_users(compose_stack: ComposeStack) -> list[int]:
    """Demo users with at least 10 PMS tracks, some of which lack audio features."""
    rows = compose_stack.sql(
        "SELECT ut.user_id FROM user_track ut JOIN track t ON t.track_id = ut.track_id "
        "GROUP BY ut.user_id HAVING COUNT(*) >= 10 AND SUM(t.features_source IS NULL) >= 1 "
        "ORDER BY ut.user_id LIMIT 60"
    )
    users = [int(row[0]) for row in rows]
    assert len(users) >= 40, users
    return users
