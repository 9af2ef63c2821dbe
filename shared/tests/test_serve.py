"""A stopping service drains: unready at once, still serving, then a graceful exit."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from tests.processes import free_port

SERVER = textwrap.dedent(
    """
    import sys
    import uvicorn
    from musicspace_shared.serve import DrainingServer
    from musicspace_shared.settings import CommonSettings
    from musicspace_shared.web import create_service_app

    db, port, drain_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    app = create_service_app(
        service="probe", settings=CommonSettings(DATABASE_URL=db), title="probe", version="0",
        routers=[],
    )
    DrainingServer(uvicorn.Config(app, port=port, log_config=None), drain_s=drain_s).run()
    """
)


def _serve(tmp_path: Path, drain_s: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SERVER,
            f"sqlite+aiosqlite:///{tmp_path}/db.sqlite",
            str(port),
            str(drain_s),
        ],
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/readyz").status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline and process.poll() is None, "the server did not start"
        time.sleep(0.1)


@pytest.mark.slow
def test_sigterm_makes_the_service_unready_while_it_keeps_serving_then_it_exits(
    tmp_path: Path,
) -> None:
    process, url = _serve(tmp_path, drain_s=2.0)
    try:
        stopped_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with httpx.Client(base_url=url) as client:
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["shutdown"].startswith("draining")
            assert client.get("/healthz").status_code == 200  # still serving
        # uvicorn re-raises the signal it handled once it has shut down gracefully.
        assert process.wait(timeout=20) in (0, -signal.SIGTERM)
        assert time.monotonic() - stopped_at >= 2.0
    finally:
        process.kill()


@pytest.mark.slow
def test_without_a_drain_period_sigterm_stops_at_once(tmp_path: Path) -> None:
    process, _url = _serve(tmp_path, drain_s=0)
    try:
        stopped_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
        assert time.monotonic() - stopped_at < 2.0
    finally:
        process.kill()
