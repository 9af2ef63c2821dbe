"""A compose stack of the real images on the real Docker engine, for the container tests.

The stack runs as its own compose project (`musicspace-test`), on free host ports, with its
own secrets, certificate and a Traefik static config whose docker provider routes only this
project's containers, so a developer's own `make compose-up` stack is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
DOCKER = shutil.which("docker", path="/usr/bin") or shutil.which("docker") or "docker"
COMPOSE = str(Path(sys.executable).parent / "docker-compose")
PROJECT = "musicspace-test"
# Replicas the test stack runs with: enough to see spreading and to lose one.
SCALE = {"m1": 3, "m2": 2, "llm": 2}


def engine_problem() -> str | None:
    """None when a Docker engine answers; otherwise why the container tests cannot run."""
    try:
        result = subprocess.run(
            [DOCKER, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"no Docker engine ({exc})"
    if result.returncode != 0:
        return f"no Docker engine answers ({result.stderr.strip().splitlines()[-1:]})"
    return None


def build_images() -> tuple[float, list[str]]:
    """`make images` for this checkout (seconds when BuildKit's cache has them, so the images
    always match the code under test): the seconds it took and the lines it printed."""
    started = time.monotonic()
    build = subprocess.run(
        [str(ROOT / "deploy" / "images" / "build.sh")],
        cwd=ROOT,
        env=os.environ | {"DOCKER": DOCKER},
        capture_output=True,
        text=True,
        timeout=3000,
    )
    assert build.returncode == 0, (
        f"make images failed:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}"
    )
    return time.monotonic() - started, build.stdout.splitlines()


@dataclass
class EngineStack:
    """What the compose and swarm stacks' tests share: the gateway client, docker, a look inside
    a replica (its own port, its /metrics)."""

    env: dict[str, str]
    gateway_port: int
    admin_key: str
    app_key: str
    log_dir: Path
    timings: dict[str, float] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)

    def report(self, line: str) -> None:
        """A figure for the end of the test run (pytest's summary), e.g. requests per replica."""
        self.findings.append(line)

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.gateway_port}"

    def client(self, *, headers: dict[str, str] | None = None, **kwargs: object) -> httpx.Client:
        """A client of the gateway sending the web app's credential (or the headers given)."""
        return httpx.Client(
            base_url=self.base_url,
            verify=False,
            timeout=60,
            headers=headers or {"X-API-Key": self.app_key},
            **kwargs,  # type: ignore[arg-type]
        )

    def failed_public_calls(self, user: int, track_id: str) -> list[str]:
        """One call of every public route through the gateway (each with its security headers),
        as the web app and an operator make them; what failed, as "METHOD path: status body"."""
        newcomer = 9_000_001  # created, given a library and erased over HTTP
        admin = {"X-API-Key": self.admin_key}
        calls = [
            ("POST", "/api/m1/train", {"user_id": user}, admin),
            ("GET", f"/api/m1/status/{user}", None, {}),
            ("POST", "/api/m1/recommend", {"user_id": user, "limit": 5}, {}),
            (
                "POST",
                "/api/m2/predict-audio",
                {"items": [{"title": "Calm piano", "artist": "Nobody"}]},
                {},
            ),
            ("GET", f"/api/m2/similar/{track_id}", None, {}),
            ("POST", "/api/m2/recommend", {"user_id": user, "limit": 5}, {}),
            ("POST", "/api/m3/train", {"user_id": user}, admin),
            ("POST", "/api/m3/recommend", {"user_id": user, "limit": 5}, {}),
            ("POST", "/api/llm/search", {"query": "energetic dance pop", "limit": 5}, {}),
            (
                "POST",
                "/api/llm/recommend",
                {"query": "something upbeat", "user_id": user, "limit": 5},
                {},
            ),
            ("POST", "/api/init-models", {"user_id": user}, admin),
            ("GET", "/api/enrich-status", None, admin),
            ("POST", "/api/recommend", {"user_id": user, "limit": 5}, {}),
            ("POST", "/api/tracks", {"tracks": [{"track_id": "ct-new-1", "title": "New"}]}, {}),
            ("PUT", f"/api/users/{newcomer}", {"name": "Container test"}, {}),
            (
                "PUT",
                f"/api/users/{newcomer}/library",
                {"mode": "replace", "tracks": [{"track_id": track_id}, {"track_id": "ct-new-1"}]},
                {},
            ),
            ("GET", f"/api/users/{newcomer}", None, {}),
            ("DELETE", f"/api/users/{newcomer}", None, {}),
        ]
        failed = []
        with self.client() as client:
            for method, path, body, headers in calls:
                response = client.request(method, path, json=body, headers=headers)
                if response.status_code >= 300:
                    failed.append(f"{method} {path}: {response.status_code} {response.text[:300]}")
                if not response.headers.get("strict-transport-security"):
                    failed.append(f"{method} {path}: no Strict-Transport-Security header")
        return failed

    def docker(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        result = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} failed: {result.stderr[-2000:]}")
        return result.stdout

    def exec_python(self, container: str, code: str, timeout: float = 60) -> str:
        """Run Python inside a container (every service image has it; curl it has not)."""
        return self.docker("exec", container, "python", "-c", code, timeout=timeout)

    def internal_get(self, container: str, path: str, *, admin: bool = False) -> str:
        """GET a service's own port from inside its container (/metrics, /readyz, admin routes)."""
        header = "{'X-API-Key': open('/run/secrets/admin_api_key').read()}" if admin else "{}"
        return self.exec_python(
            container,
            "import urllib.request as u; "
            f"r = u.urlopen(u.Request('http://127.0.0.1:8000{path}', headers={header}), timeout=20); "
            "print(r.read().decode())",
        )

    def internal_json(
        self, container: str, method: str, path: str, body: object = None
    ) -> dict[str, object]:
        """A JSON call to a service's own port, inside its container, with the app credential."""
        code = (
            "import json, urllib.request as u; "
            f"body = {json.dumps(body).encode()!r} if {body is not None} else None; "
            f"r = u.Request('http://127.0.0.1:8000{path}', data=body, method={method!r}, "
            "headers={'X-API-Key': open('/run/secrets/app_api_key').read(), "
            "'Content-Type': 'application/json'}); "
            "print(u.urlopen(r, timeout=120).read().decode())"
        )
        return json.loads(self.exec_python(container, code, timeout=180))

    def requests_served(self, container: str, route: str) -> float:
        """musicspace_http_requests_total summed over methods and statuses for one route template."""
        total = 0.0
        for line in self.internal_get(container, "/metrics").splitlines():
            if line.startswith("musicspace_http_requests_total{") and f'route="{route}"' in line:
                total += float(line.rsplit(" ", 1)[1])
        return total

    def wait_routed(self, path: str, timeout_s: float = 120) -> None:
        """Traefik learns about replicas from the engine and checks /readyz every 5 s. Routed
        means a service answered (JSON, below 500): Traefik's own 404 before its provider has
        found the service ("404 page not found", text/plain) is not (a swarm run once started
        its load on that and saw 18 such 404s)."""
        deadline = time.monotonic() + timeout_s
        last = ""
        with self.client() as client:
            while time.monotonic() < deadline:
                try:
                    response = client.get(path)
                    served = "json" in response.headers.get("content-type", "")
                    if response.status_code < 500 and served:
                        return
                    last = f"{response.status_code} {response.text[:200]}"
                except httpx.HTTPError as exc:
                    last = str(exc)
                time.sleep(1)
        raise TimeoutError(f"{path} not routed after {timeout_s}s: {last}")


@dataclass
class ComposeStack(EngineStack):
    def compose(self, *args: str, check: bool = True, timeout: float = 1800) -> str:
        result = subprocess.run(
            [COMPOSE, *self.env_file_args(), *args],
            cwd=ROOT,
            env=os.environ | self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"compose {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-4000:]}"
            )
        return result.stdout

    @staticmethod
    def env_file_args() -> list[str]:
        env_file = ROOT / "var" / "images.env"
        return ["--env-file", str(env_file)] if env_file.is_file() else []

    def containers(self, service: str) -> list[str]:
        """Ids of the service's running containers, ordered by replica number."""
        out = self.compose("ps", "--format", "json", service)
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        rows = [row for row in rows if row.get("State") == "running"]
        rows.sort(
            key=lambda row: int(
                row.get("Labels", "")
                .split("com.docker.compose.container-number=")[-1]
                .split(",")[0]
                or 0
            )
        )
        return [row["ID"] for row in rows]

    def sql(self, query: str) -> list[list[str]]:
        """Rows of a query in the stack's MariaDB, as the application's user (both images)."""
        out = self.compose(
            "exec",
            "-T",
            "mariadb",
            "sh",
            "-c",
            'mariadb -umusicspace -p"$(cat /run/secrets/db_password)" musicspace -N -B -e "$0"',
            query,
        )
        return [line.split("\t") for line in out.splitlines() if line]

    def up(self, timeout_s: int = 1500) -> None:
        """`compose up` at the test scale, waiting for health and for Traefik's routes."""
        scale = [arg for name, n in SCALE.items() for arg in ("--scale", f"{name}={n}")]
        self.compose("up", "-d", "--no-build", "--wait", "--wait-timeout", str(timeout_s), *scale)
        self.wait_routed("/api/m1/status/1")

    def wait_healthy(self, service: str, count: int, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            out = self.compose("ps", "--format", "json", service)
            rows = [json.loads(line) for line in out.splitlines() if line.strip()]
            if sum(row.get("Health") == "healthy" for row in rows) >= count:
                return
            time.sleep(2)
        raise TimeoutError(f"{service}: fewer than {count} healthy replicas after {timeout_s}s")
