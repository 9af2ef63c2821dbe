"""Run a service under uvicorn: `python -m musicspace_<svc>` calls main("<svc>")."""

from __future__ import annotations

import os
import sys
import threading
from types import FrameType

import uvicorn

from musicspace_shared import registry
from musicspace_shared.health import start_draining

# How long a thread may hold the GIL while another waits for it (CPython's default: 5 ms).
# A catalog rebuild runs in a worker thread; every time a request's code (the event loop, a
# scoring thread) needs the interpreter back it waited up to this long, several times per
# request. 1 ms keeps requests moving while a rebuild runs (bench/bench_sync.py).
GIL_SWITCH_INTERVAL_S = 0.001


class DrainingServer(uvicorn.Server):
    """uvicorn that, asked to stop, first drains: /readyz answers 503 for `drain_s` while
    every request is still served, so the gateway's health check (every 5 s) takes the replica
    out of rotation before it closes its connections; then uvicorn's graceful shutdown.

    Without the drain, `docker stop` of one of three replicas failed a request: uvicorn closed
    an idle keep-alive connection just as Traefik sent a POST on it (502; Traefik retries only
    connections it could not open). A second signal stops at once.
    """

    def __init__(self, config: uvicorn.Config, *, drain_s: float) -> None:
        super().__init__(config)
        self.drain_s = drain_s
        self._drain_timer: threading.Timer | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.drain_s <= 0 or self._drain_timer is not None:
            super().handle_exit(sig, frame)
            return
        start_draining()
        self._drain_timer = threading.Timer(self.drain_s, super().handle_exit, (sig, frame))
        self._drain_timer.daemon = True
        self._drain_timer.start()


def main(service: str) -> None:
    """Serve musicspace_<service>.app:create_app on HOST:PORT (env; the registry's local port
    by default), one worker per process.

    Scale by running more processes (compose replicas), not workers: each replica checks the
    shared model volume for newer versions before use. SHUTDOWN_DRAIN_S (compose: 7; default 0
    for local runs and tests) is how long a stopping replica reports unready before it closes.
    """
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    config = uvicorn.Config(
        f"musicspace_{service}.app:create_app",
        factory=True,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", registry.get(service).port)),
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        timeout_graceful_shutdown=10,
        # Longer than the gateway's idle upstream timeout (60 s, gateway/traefik.yml): the
        # proxy, not the service, closes an idle connection, so no request races a close.
        timeout_keep_alive=int(os.environ.get("KEEP_ALIVE_S", 75)),
    )
    DrainingServer(config, drain_s=float(os.environ.get("SHUTDOWN_DRAIN_S", 0))).run()
