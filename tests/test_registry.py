"""The service registry (musicspace_shared.registry) is the one list of services: every
service folder is in it, and what cannot read it (README, Dockerfile) agrees with it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from musicspace_shared import registry
from musicspace_shared.settings import CommonSettings

ROOT = Path(__file__).resolve().parent.parent


def test_every_service_folder_is_registered_and_every_entry_has_its_package() -> None:
    folders = {path.parent.name for path in (ROOT / "services").glob("*/pyproject.toml")}
    assert folders == set(registry.names())
    for service in registry.SERVICES:
        package = ROOT / "services" / service.name / "src" / service.package
        assert (package / "__main__.py").is_file(), service.name
        assert (ROOT / "requirements" / "images" / f"{service.name}.in").is_file(), service.name


def test_local_ports_are_distinct_and_shift_together() -> None:
    ports = registry.local_ports()
    assert len(set(ports.values())) == len(ports)
    shifted = registry.local_ports(18001)
    assert shifted[registry.SERVICES[0].name] == 18001
    assert {n: p - 18001 for n, p in shifted.items()} == {
        n: p - registry.SERVICES[0].port for n, p in ports.items()
    }


def test_routes_render_as_the_gateway_rules() -> None:
    assert registry.get("m1").rule == "PathPrefix(`/api/m1/`)"
    assert registry.get("enrichment").rule == (
        "Path(`/api/init-models`) || Path(`/api/enrich-all`) || Path(`/api/enrich-status`)"
        " || PathPrefix(`/api/enrich-status/`) || PathPrefix(`/api/users/`) || Path(`/api/tracks`)"
    )


def test_peer_urls_default_to_the_registry_ports(monkeypatch) -> None:
    for service in registry.SERVICES:
        monkeypatch.delenv(f"{service.name.upper()}_URL", raising=False)
    settings = CommonSettings()
    for service in registry.SERVICES:
        assert getattr(settings, f"{service.name}_url") == f"http://127.0.0.1:{service.port}"


def test_the_makefile_and_image_build_read_the_names_with_plain_python() -> None:
    """`make` runs the registry with the system interpreter (no virtualenv, no project path)."""
    result = subprocess.run(
        [sys.executable, "-I", str(Path(registry.__file__))],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == list(registry.names())
    make = subprocess.run(
        ["make", "-n", "lock"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    for name in registry.names():
        assert f"services/{name}/requirements.lock" in make.stdout, name


def test_readme_service_table_matches_the_registry() -> None:
    text = (ROOT / "README.md").read_text()
    table = text[text.index("## Services") :].split("\n\n")[1]
    rows = {
        re.match(r"\| (\w+):", line).group(1): line  # type: ignore[union-attr]
        for line in table.splitlines()
        if re.match(r"\| \w+:", line)
    }
    assert set(rows) == set(registry.names())
    for service in registry.SERVICES:
        cells = [cell.strip() for cell in rows[service.name].strip("|").split("|")]
        assert f"| {service.port} |" in rows[service.name], service.name
        for route in service.routes:
            if not route.endswith("/") or route.rstrip("/") not in service.routes:
                assert f"`{route}`" in cells[1], (service.name, route)
        if service.volume:
            assert f"`{service.volume}` at `/app/{service.model_family}`" in cells[3]


def test_image_creates_every_model_folder() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    made = re.search(r"mkdir -p ([^\\&]+)", dockerfile).group(1).split()  # type: ignore[union-attr]
    assert {f"/app/{family}" for family in registry.model_families()} <= set(made)
