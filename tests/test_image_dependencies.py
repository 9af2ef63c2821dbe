"""Each image installs only its own lock (deploy/Dockerfile): every third-party module that the
shared library and the service import must be pinned there. In the shared development venv an
undeclared import still works, and only the container would fail to start (llm's `scipy`
once did: the container tests caught it after a five-minute build; this catches it at once).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

from musicspace_shared import registry

ROOT = Path(__file__).resolve().parent.parent
SERVICES = registry.names()


def _imported_top_level(folder: Path) -> set[str]:
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        if "migrations" in path.parts:
            continue  # alembic's own modules, run by the CLI image
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {
        n for n in names if n not in sys.stdlib_module_names and not n.startswith("musicspace_")
    }


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked(lock: Path) -> set[str]:
    return {
        _normalise(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9._-]+)==", lock.read_text(), re.M)
    }


@pytest.mark.parametrize("service", SERVICES)
def test_every_module_a_service_image_imports_is_in_its_lock(service: str) -> None:
    locked = _locked(ROOT / "services" / service / "requirements.lock")
    distributions = importlib.metadata.packages_distributions()
    imported = _imported_top_level(ROOT / "shared" / "src") | _imported_top_level(
        ROOT / "services" / service / "src"
    )
    missing = {
        module: distributions.get(module, ["(no installed distribution)"])
        for module in sorted(imported)
        if not any(_normalise(d) in locked for d in distributions.get(module, []))
    }
    assert missing == {}, f"imported by {service} but not in its requirements.lock: {missing}"
