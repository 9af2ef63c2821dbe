"""The whole stack for end-to-end tests: every registered service as a real process, and the real Traefik.

Against the MariaDB demo subset (`demo_db_url`), with a temporary MODEL_ROOT whose global
models are trained first by deploy/bootstrap.py (what `make up` and compose run), a temporary
certificate and a gateway config rendered (deploy/render_gateway.py) for these free ports.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy import gen_cert
from musicspace_shared import registry
from tests import credentials
from tests.e2e.stack import Stack, demo_user_and_track
from tests.processes import ServiceProcess, free_port
from tests.traefik import running_traefik

ROOT = Path(__file__).resolve().parents[2]
SERVICES = registry.names()


@pytest.fixture(scope="session")
def stack(demo_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("e2e")
    gen_cert.generate(out_dir=tmp / "certs")
    admin_key = secrets.token_urlsafe(24)
    (tmp / "admin_api_key").write_text(admin_key)
    # As `make up` does: credential files (the user-token key is the tests' own, so
    # tests.credentials.as_user() signs tokens these services accept).
    (tmp / "app_api_key").write_text(credentials.APP_KEY + "\n")
    (tmp / "user_token_secret").write_text(credentials.USER_TOKEN_SECRET + "\n")
    ports = {name: free_port() for name in SERVICES}
    env = {
        "DATABASE_URL": demo_db_url,
        "MODEL_ROOT": str(tmp / "models"),
        "ADMIN_API_KEY_FILE": str(tmp / "admin_api_key"),
        "APP_API_KEY_FILE": str(tmp / "app_api_key"),
        "USER_TOKEN_SECRET_FILE": str(tmp / "user_token_secret"),
        "LOG_LEVEL": "INFO",
        # Small models: these tests check the plumbing, the benchmarks and evals check quality.
        "M3_ITERATIONS": "60",
        "M3_FINETUNE_ITERATIONS": "10",
        **{f"{name.upper()}_URL": f"http://127.0.0.1:{port}" for name, port in ports.items()},
    }
    # Global models first, exactly as `make up` and compose's bootstrap job train them.
    started = time.monotonic()
    bootstrap = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "bootstrap.py"), "--keep-going"],
        cwd=tmp,
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    steps = [
        line
        for line in (bootstrap.stdout + bootstrap.stderr).splitlines()
        if line.startswith("<== ")
    ]
    print(f"\ne2e: bootstrap {time.monotonic() - started:.0f}s: {'; '.join(steps)}", flush=True)
    user_id, track_id = asyncio.run(demo_user_and_track(demo_db_url))
    services = {
        name: ServiceProcess(name=name, port=ports[name], env=env, log_path=tmp / f"{name}.log")
        for name in SERVICES
    }
    stack = Stack(
        base_url="",
        tmp=tmp,
        env=env,
        ports=ports,
        admin_key=admin_key,
        app_key=credentials.APP_KEY,
        user_id=user_id,
        track_id=track_id,
        services=services,
        bootstrap_log=bootstrap.stdout + bootstrap.stderr,
    )
    try:
        for service in services.values():
            service.start()
        for name, service in services.items():
            try:
                service.wait_ready(timeout_s=180)
            except (RuntimeError, TimeoutError) as exc:
                stack.unavailable[name] = str(exc)[-2000:]
            print(
                f"e2e: {name} {'ready' if name not in stack.unavailable else 'NOT ready'} at {time.monotonic() - started:.0f}s",
                flush=True,
            )
        static, gateway_port, ops_port = stack.render_gateway(tmp / "gateway")
        stack.base_url = f"https://127.0.0.1:{gateway_port}"
        stack.env["GATEWAY_OPS_PORT"] = str(ops_port)
        with running_traefik(static, ops_port=ops_port, log_path=tmp / "traefik.log"):
            yield stack
    finally:
        for service in services.values():
            service.stop()
