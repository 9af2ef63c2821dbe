"""compose.yaml, checked statically (no Docker engine here): Compose's own parser, then the shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from musicspace_shared import registry

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = Path(sys.executable).parent / "docker-compose"
SERVICES = registry.names()
MODEL_VOLUMES = {s.name: f"/app/{s.model_family}" for s in registry.SERVICES if s.model_family}
PUBLIC_BASES = {
    "PYTHON_IMAGE": "python:3.11-slim-bookworm",
    "UV_IMAGE": "ghcr.io/astral-sh/uv:0.13.9",
}
IMAGE_VARIABLES = ("MARIADB_IMAGE", "CHROMA_IMAGE", "TRAEFIK_IMAGE", "PROMETHEUS_IMAGE")
PUBLIC_IMAGES = {
    "mariadb": "mariadb:11.4",
    "chroma": "chromadb/chroma:1.5.9",
    "traefik": "traefik:v3.7",
    "prometheus": "prom/prometheus:v3.5.0",
}


@pytest.fixture(scope="module")
def config() -> dict:
    result = subprocess.run(
        [str(COMPOSE), "-f", "compose.yaml", "config", "--format", "json"],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k not in (*PUBLIC_BASES, *IMAGE_VARIABLES)},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def test_compose_config_is_valid() -> None:
    result = subprocess.run(
        [str(COMPOSE), "-f", "compose.yaml", "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_every_compose_line_is_commented() -> None:
    bare = [
        f"{number}: {line}"
        for number, line in enumerate((ROOT / "compose.yaml").read_text().splitlines(), 1)
        if line.strip() and "#" not in line
    ]
    assert bare == []


def test_infrastructure_services_exist_with_health_checks(config: dict) -> None:
    services = config["services"]
    for name in ("mariadb", "chroma", "traefik", "prometheus", "bootstrap", *SERVICES):
        assert name in services, name
    for name in ("mariadb", "chroma", "traefik", *SERVICES):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no health check"


def test_compose_builds_exactly_the_registered_services(config: dict) -> None:
    built = {
        name
        for name, service in config["services"].items()
        if service.get("build", {}).get("args", {}).get("PACKAGE", "").startswith("services/")
    }
    assert built == set(SERVICES)


def test_services_scale_without_fixed_names_or_host_ports(config: dict) -> None:
    for name in SERVICES:
        service = config["services"][name]
        assert "container_name" not in service, name
        assert not service.get("ports"), f"{name} publishes a host port: --scale would collide"


def test_only_the_gateway_publishes_a_public_port(config: dict) -> None:
    published = {
        name: [(p.get("host_ip", ""), p["published"]) for p in service.get("ports", [])]
        for name, service in config["services"].items()
        if service.get("ports")
    }
    assert published.pop("traefik") == [("", "8443")]
    assert all(host_ip == "127.0.0.1" for ports in published.values() for host_ip, _ in ports), (
        published
    )


def test_service_health_checks_probe_readyz(config: dict) -> None:
    for name in SERVICES:
        assert "/readyz" in " ".join(config["services"][name]["healthcheck"]["test"]), name


def test_services_wait_for_healthy_database_and_bootstrap(config: dict) -> None:
    for name in SERVICES:
        depends = config["services"][name]["depends_on"]
        assert depends["mariadb"]["condition"] == "service_healthy", name
        assert depends["bootstrap"]["condition"] == "service_completed_successfully", name
    assert config["services"]["llm"]["depends_on"]["chroma"]["condition"] == "service_healthy"


def test_model_volumes_mounted_at_design_paths(config: dict) -> None:
    for name, target in MODEL_VOLUMES.items():
        mounts = {m["target"]: m for m in config["services"][name].get("volumes", [])}
        assert mounts[target]["type"] == "volume", name
        assert mounts[target]["source"] == registry.get(name).volume
        assert config["services"]["bootstrap"]["volumes"], "bootstrap trains into the volumes"
        assert target in {m["target"] for m in config["services"]["bootstrap"]["volumes"]}


def test_secrets_are_compose_secrets_not_environment(config: dict) -> None:
    credentials = {"admin_api_key", "app_api_key", "user_token_secret"}
    assert credentials | {"google_api_key", "db_password"} <= set(config["secrets"])
    for name in SERVICES:
        env = config["services"][name]["environment"]
        assert env["ADMIN_API_KEY_FILE"] == "/run/secrets/admin_api_key"
        assert env["APP_API_KEY_FILE"] == "/run/secrets/app_api_key"
        assert env["USER_TOKEN_SECRET_FILE"] == "/run/secrets/user_token_secret"
        assert not {"ADMIN_API_KEY", "APP_API_KEY", "USER_TOKEN_SECRET", "GOOGLE_API_KEY"} & set(
            env
        )
        assert ":" not in env["DATABASE_URL"].split("//", 1)[1].split("@", 1)[0], (
            "no password in DATABASE_URL"
        )
        assert {s["source"] for s in config["services"][name]["secrets"]} >= {
            *credentials,
            "db_password",
        }
    assert (
        config["services"]["llm"]["environment"]["GOOGLE_API_KEY_FILE"]
        == "/run/secrets/google_api_key"
    )


def test_service_images_build_only_their_own_package(config: dict) -> None:
    for name in SERVICES:
        build = config["services"][name]["build"]
        assert build["dockerfile"] == "deploy/Dockerfile"
        assert build["args"] == {"PACKAGE": f"services/{name}", "SERVICE": name, **PUBLIC_BASES}


def test_public_images_are_the_defaults(config: dict) -> None:
    """Real users get the public images; only var/images.env (make images) names local ones."""
    images = {name: config["services"][name]["image"] for name in PUBLIC_IMAGES}
    assert images == PUBLIC_IMAGES
    assert (
        config["services"]["bootstrap"]["build"]["args"]["PYTHON_IMAGE"]
        == PUBLIC_BASES["PYTHON_IMAGE"]
    )


def test_dockerfile_is_multistage_and_non_root() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    stages = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert len(stages) >= 2
    final_stage = text[text.rindex("\nFROM ") :]
    users = [line.split()[1] for line in final_stage.splitlines() if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert "requirements.lock" in text and "--require-hashes" in text


def test_prometheus_scrapes_every_service_and_traefik(config: dict) -> None:
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    names = {n for sd in jobs["musicspace"]["dns_sd_configs"] for n in sd["names"]}
    assert names == set(SERVICES)
    assert jobs["traefik"]["static_configs"][0]["targets"] == ["traefik:8082"]
    mounts = {m["target"]: m["source"] for m in config["services"]["prometheus"]["volumes"]}
    assert mounts["/etc/prometheus/prometheus.yml"].endswith("deploy/prometheus.yml")
