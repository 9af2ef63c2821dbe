"""Run a service under uvicorn: `python -m musicspace_<svc>` calls main("<svc>", port)."""

from __future__ import annotations

import os
import sys

import uvicorn

# How long a thread may hold the GIL while another waits for it (CPython's default: 5 ms).
# A catalog rebuild runs in a worker thread; every time a request's code (the event loop, a
# scoring thread) needs the interpreter back it waited up to this long, several times per
# request. 1 ms keeps requests moving while a rebuild runs (bench/bench_sync.py).
GIL_SWITCH_INTERVAL_S = 0.001


def main(service: str, default_port: int) -> None:
    """Serve musicspace_<service>.app:create_app on HOST:PORT (env), one worker per process.

    Scale by running more processes (compose replicas), not workers: each replica checks the
    shared model volume for newer versions before use.
    """
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    uvicorn.run(
        f"musicspace_{service}.app:create_app",
        factory=True,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", default_port)),
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        timeout_graceful_shutdown=10,
        # Longer than the gateway's idle upstream timeout (60 s, gateway/traefik.yml): the
        # proxy, not the service, closes an idle connection, so no request races a close.
        timeout_keep_alive=int(os.environ.get("KEEP_ALIVE_S", 75)),
    )
