"""The gateway config: one route table for local runs and compose, loaded by the real Traefik."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from deploy import gen_cert, render_gateway
from musicspace_shared import registry
from tests.processes import free_port
from tests.traefik import error_lines, running_traefik

ROOT = Path(__file__).resolve().parent.parent
OPS_PATHS = ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json")


@pytest.fixture(scope="module")
def table() -> dict:
    return render_gateway.load_routes()


@pytest.fixture(scope="module")
def compose() -> dict:
    """compose.yaml as Compose itself resolves it (anchors and merges applied)."""
    binary = Path(sys.executable).parent / "docker-compose"
    result = subprocess.run(
        [str(binary), "-f", str(ROOT / "compose.yaml"), "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    gen_cert.generate(out_dir=out)
    return out


def _rule_paths(rule: str) -> list[str]:
    return re.findall(r"Path(?:Prefix)?\(`([^`]*)`\)", rule)


def test_route_table_routes_only_public_api_paths(table: dict) -> None:
    for name, spec in table["services"].items():
        paths = _rule_paths(spec["rule"])
        assert paths, f"{name}: no Path/PathPrefix in {spec['rule']!r}"
        assert all(path.startswith("/api/") for path in paths), (
            f"{name} routes outside /api/: {paths}"
        )
        assert "Host(" not in spec["rule"] and "PathRegexp" not in spec["rule"]


def test_route_table_covers_every_design_route(table: dict) -> None:
    design_routes = {
        "m1": ["/api/m1/recommend", "/api/m1/train", "/api/m1/status/1"],
        "m2": ["/api/m2/recommend", "/api/m2/predict-audio", "/api/m2/similar/abc"],
        "m3": ["/api/m3/recommend", "/api/m3/train"],
        "llm": ["/api/llm/search", "/api/llm/recommend"],
        "enrichment": [
            "/api/init-models",
            "/api/enrich-all",
            "/api/enrich-status",
            "/api/users/1",
            "/api/users/1/library",
            "/api/tracks",
        ],
        "recommend": ["/api/recommend"],
    }
    for service, paths in design_routes.items():
        prefixes = _rule_paths(table["services"][service]["rule"])
        for path in paths:
            assert any(path == p or (p.endswith("/") and path.startswith(p)) for p in prefixes), (
                service,
                path,
            )


def test_compose_labels_match_route_table(table: dict, compose: dict) -> None:
    for name in table["services"]:
        labels = compose["services"][name].get("labels", {})
        traefik_labels = {k: v for k, v in labels.items() if k.startswith("traefik.")}
        assert traefik_labels == render_gateway.compose_labels(table=table, service=name), name


def test_compose_routes_no_service_outside_route_table(table: dict, compose: dict) -> None:
    routed = {
        name
        for name, svc in compose["services"].items()
        if svc.get("labels", {}).get("traefik.enable") == "true"
    }
    assert routed == set(table["services"])


def test_local_render_matches_route_table_and_labels(
    table: dict, tmp_path: Path, certs: Path
) -> None:
    ports = registry.local_ports(18001)
    static = render_gateway.render_local(
        out_dir=tmp_path, ports=ports, cert_dir=certs, gateway_port=18443, ops_port=18082
    )
    routes = yaml.safe_load((static.parent / "dynamic" / "routes.yml").read_text())["http"]
    for name, spec in table["services"].items():
        router, service = routes["routers"][name], routes["services"][name]["loadBalancer"]
        labels = render_gateway.compose_labels(table=table, service=name)
        prefix = f"traefik.http.routers.{name}"
        assert router["rule"] == spec["rule"] == labels[f"{prefix}.rule"]
        assert ",".join(router["middlewares"]) == labels[f"{prefix}.middlewares"]
        assert router["entryPoints"] == [labels[f"{prefix}.entrypoints"]]
        assert service["servers"] == [{"url": f"http://127.0.0.1:{ports[name]}"}]
        lb = f"traefik.http.services.{name}.loadbalancer.healthcheck"
        assert service["healthCheck"] == {
            "path": labels[f"{lb}.path"],
            "interval": labels[f"{lb}.interval"],
            "timeout": labels[f"{lb}.timeout"],
        }


def test_local_render_copies_the_shared_middlewares(tmp_path: Path, certs: Path) -> None:
    static = render_gateway.render_local(
        out_dir=tmp_path, ports=registry.local_ports(), cert_dir=certs
    )
    rendered = yaml.safe_load((static.parent / "dynamic" / "middlewares.yml").read_text())
    assert rendered == yaml.safe_load(render_gateway.MIDDLEWARES_FILE.read_text())


def test_static_config_has_one_public_entrypoint_with_tls() -> None:
    static = yaml.safe_load((ROOT / "gateway" / "traefik.yml").read_text())
    entrypoints = static["entryPoints"]
    assert set(entrypoints) == {"websecure", "ops"}
    assert entrypoints["websecure"]["address"] == ":8443"
    assert entrypoints["websecure"]["http"]["tls"] == {}
    assert "api" not in static, "the Traefik dashboard stays off"


def test_traefik_loads_rendered_local_config_and_routes_only_api(
    table: dict, tmp_path: Path, certs: Path
) -> None:
    gateway_port, ops_port = free_port(), free_port()
    # Nothing listens on these service ports: routed paths answer 502/503, unrouted ones 404.
    ports = {name: free_port() for name in table["services"]}
    static = render_gateway.render_local(
        out_dir=tmp_path,
        ports=ports,
        cert_dir=certs,
        gateway_port=gateway_port,
        ops_port=ops_port,
        listen="127.0.0.1",
    )
    log = tmp_path / "traefik.log"
    with running_traefik(static, ops_port=ops_port, log_path=log):
        base = f"https://127.0.0.1:{gateway_port}"
        with httpx.Client(base_url=base, verify=False, timeout=5) as client:
            for name, spec in table["services"].items():
                path = _rule_paths(spec["rule"])[0].rstrip("/") + (
                    "/x" if spec["rule"].startswith("PathPrefix") else ""
                )
                assert client.get(path).status_code in (502, 503), (name, path)
            for path in OPS_PATHS:
                assert client.get(path).status_code == 404, path
        # Plain http on the TLS port: every router is TLS-only, so nothing is routed.
        plain = httpx.get(f"http://127.0.0.1:{gateway_port}/api/m1/x", timeout=3)
        assert plain.status_code == 404
    assert error_lines(log.read_text()) == []


def test_traefik_loads_compose_static_and_dynamic_config(tmp_path: Path, certs: Path) -> None:
    """gateway/traefik.yml and gateway/dynamic as compose mounts them, docker provider aside."""
    static = yaml.safe_load((ROOT / "gateway" / "traefik.yml").read_text())
    dynamic = tmp_path / "dynamic"
    shutil.copytree(ROOT / "gateway" / "dynamic", dynamic)
    certificates = dynamic / "certificates.yml"
    certificates.write_text(certificates.read_text().replace("/etc/traefik/certs", str(certs)))
    assert static["providers"]["file"]["directory"] == "/etc/traefik/dynamic"
    # No Docker engine here: keep the file provider, drop the docker one, use free ports.
    static["providers"] = {"file": {"directory": str(dynamic), "watch": False}}
    gateway_port, ops_port = free_port(), free_port()
    static["entryPoints"]["websecure"]["address"] = f"127.0.0.1:{gateway_port}"
    static["entryPoints"]["ops"]["address"] = f"127.0.0.1:{ops_port}"
    static.setdefault("log", {})["noColor"] = True
    path = tmp_path / "traefik.yml"
    path.write_text(yaml.safe_dump(static))
    log = tmp_path / "traefik.log"
    with running_traefik(path, ops_port=ops_port, log_path=log):
        assert (
            httpx.get(
                f"https://127.0.0.1:{gateway_port}/api/m1/x", verify=False, timeout=5
            ).status_code
            == 404
        )
        metrics = httpx.get(f"http://127.0.0.1:{ops_port}/metrics", timeout=5)
        assert metrics.status_code == 200 and "traefik_" in metrics.text
        time.sleep(0.5)  # let the file provider report what it loaded
    assert error_lines(log.read_text()) == []


def test_traefik_rejects_unknown_static_fields(tmp_path: Path) -> None:
    """Guards the two tests above: a typo in the static config is an error, not ignored."""
    path = tmp_path / "traefik.yml"
    path.write_text(
        yaml.safe_dump({"entryPoints": {"websecure": {"address": ":0", "adress": "typo"}}})
    )
    result = subprocess.run(
        [str(Path(sys.executable).parent / "traefik"), f"--configFile={path}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert error_lines(result.stdout + result.stderr)
