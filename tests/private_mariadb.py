"""A private MariaDB server (own datadir and port) that a test may stop and start at will.

The shared server at 127.0.0.1:3306 must stay up for every other test, so outage tests run
their own mariadbd from the machine's MariaDB installation.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.processes import free_port


def available() -> bool:
    return bool(shutil.which("mariadb-install-db") and Path("/usr/sbin/mariadbd").exists())


@dataclass
class PrivateMariaDB:
    root: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def server_url(self) -> str:
        return f"mysql+asyncmy://root@127.0.0.1:{self.port}"

    def install(self) -> PrivateMariaDB:
        self.port = self.port or free_port()
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={self.root / 'data'}",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
        )
        return self

    def start(self) -> None:
        log = (self.root / "server.log").open("ab")
        self.process = subprocess.Popen(
            [
                "/usr/sbin/mariadbd",
                "--no-defaults",
                f"--datadir={self.root / 'data'}",
                "--user=root",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--socket={self.root / 'sock'}",
                f"--pid-file={self.root / 'pid'}",
                "--skip-name-resolve",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.wait_ready()

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            probe = subprocess.run(
                [
                    "mariadb-admin",
                    "--no-defaults",
                    "-uroot",
                    "-h127.0.0.1",
                    f"-P{self.port}",
                    "ping",
                ],
                capture_output=True,
            )
            if probe.returncode == 0:
                return
            time.sleep(0.2)
        raise TimeoutError(f"private MariaDB not ready on {self.port}")

    def execute(self, sql: str) -> None:
        subprocess.run(
            ["mariadb", "--no-defaults", "-uroot", "-h127.0.0.1", f"-P{self.port}", "-e", sql],
            check=True,
        )

    def stop(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=60)
