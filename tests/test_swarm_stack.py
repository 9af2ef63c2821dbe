"""stack.yaml and gateway/traefik-swarm.yml: fresh renders of compose.yaml and gateway/traefik.yml,
and the swarm settings the issue asks for (no engine needed; tests/swarm deploys them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deploy import render_stack
from musicspace_shared import registry

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def stack() -> dict:
    return yaml.safe_load(render_stack.STACK_FILE.read_text())


def test_committed_stack_files_are_fresh_renders_of_compose() -> None:
    result = subprocess.run(
        [sys.executable, "deploy/render_stack.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_every_compose_service_secret_and_volume_is_in_the_stack(stack: dict) -> None:
    compose = render_stack.load_compose()
    assert list(stack["services"]) == list(compose["services"])
    assert set(compose["secrets"]) <= set(stack["secrets"])
    assert set(stack["volumes"]) == set(compose["volumes"])
    for name, service in stack["services"].items():
        assert not {"build", "depends_on", "restart", "labels"} & set(service), name
        assert service["image"] == compose["services"][name]["image"], name
        assert service.get("healthcheck") == compose["services"][name].get("healthcheck"), name


def test_routes_are_service_labels_with_the_compose_values(stack: dict) -> None:
    compose = render_stack.load_compose()
    for name in registry.names():
        assert stack["services"][name]["deploy"]["labels"] == compose["services"][name]["labels"]


def test_services_roll_start_first_and_m1_runs_three_replicas(stack: dict) -> None:
    for name in registry.names():
        deploy = stack["services"][name]["deploy"]
        assert deploy["update_config"]["order"] == "start-first", name
        assert deploy["update_config"]["parallelism"] == 1, name
        assert deploy["update_config"]["failure_action"] == "rollback", name
    assert stack["services"]["m1"]["deploy"]["replicas"] == 3
    # Names resolve to every task's address, as in compose (and no VIP: it needs IPVS).
    assert {s["deploy"]["endpoint_mode"] for s in stack["services"].values()} == {"dnsrr"}
    assert stack["services"]["bootstrap"]["deploy"]["restart_policy"]["condition"] == "on-failure"


def test_overlay_network_and_model_volumes_an_operator_can_point_at_nfs(stack: dict) -> None:
    assert stack["networks"] == {"backend": {"driver": "overlay", "attachable": True}}
    for family in ("m1", "m2", "m3"):
        volume = stack["volumes"][f"{family}-models"]
        assert volume["driver_opts"] == {
            "type": "${MODEL_VOLUME_TYPE:-}",
            "o": "${MODEL_VOLUME_OPTS:-}",
            "device": f"${{{family.upper()}_MODELS_DEVICE:-}}",
        }


def test_gateway_reads_the_swarm_and_its_config_comes_as_configs_and_secrets(stack: dict) -> None:
    traefik = stack["services"]["traefik"]
    assert traefik["volumes"] == ["/var/run/docker.sock:/var/run/docker.sock:ro"]
    assert {c["target"] for c in traefik["configs"]} == {
        "/etc/traefik/traefik.yml",
        "/etc/traefik/dynamic/middlewares.yml",
        "/etc/traefik/dynamic/certificates.yml",
    }
    assert {s["target"] for s in traefik["secrets"]} == {
        "/etc/traefik/certs/cert.pem",
        "/etc/traefik/certs/key.pem",
    }
    assert traefik["deploy"]["placement"]["constraints"] == ["node.role == manager"]
    assert traefik["ports"] == [
        {"target": 8443, "published": "${GATEWAY_PORT:-8443}", "protocol": "tcp", "mode": "host"}
    ]
    published = [name for name, s in stack["services"].items() if s.get("ports")]
    assert published == ["traefik"]
    static = yaml.safe_load(render_stack.TRAEFIK_SWARM_STATIC.read_text())
    assert set(static["providers"]) == {"swarm", "file"}
    assert static["providers"]["swarm"]["constraints"] == (
        "Label(`com.docker.stack.namespace`,`musicspace`)"
    )
    compose_static = yaml.safe_load((ROOT / "gateway" / "traefik.yml").read_text())
    assert {k: v for k, v in static.items() if k != "providers"} == {
        k: v for k, v in compose_static.items() if k != "providers"
    }


def test_a_new_bind_mount_in_compose_must_be_given_a_swarm_equivalent() -> None:
    compose = render_stack.load_compose()
    compose["services"]["m1"]["volumes"].append("./var/extra:/app/extra")
    with pytest.raises(ValueError, match="bind mount ./var/extra"):
        render_stack.render(compose)
