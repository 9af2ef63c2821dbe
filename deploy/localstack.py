"""The local stack without Docker: `make up`, `make down`, `make status`.

    python deploy/localstack.py up [--gateway-port 8443] [--first-port N] [--var var]
    python deploy/localstack.py down | status

`up`: certificate and credentials (admin key, app credential, user-token signing key: files
under <var>, made once), first-start bootstrap (migrate SQLite, import the demo data,
train missing global models: deploy/bootstrap.py), the gateway config for these ports
(deploy/render_gateway.py), then the registered services (musicspace_shared.registry) and Traefik as background processes with
their pid files and logs under <var>/run/, and waits until every /readyz answers.
`down` stops exactly the processes whose pid files `up` wrote (checked against their command
line, so a recycled pid is never signalled). Standard library only: it runs before and
without the virtualenv's packages, and drives the virtualenv's interpreter for the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PY = ROOT / ".venv" / "bin" / "python"
TRAEFIK = ROOT / ".venv" / "bin" / "traefik"
# The service registry is standard library only: readable before the virtualenv exists.
sys.path.insert(0, str(ROOT / "shared" / "src"))
from musicspace_shared import registry  # noqa: E402

SERVICES = registry.names()


class Stack:
    def __init__(self, *, var: Path, gateway_port: int, first_port: int, ops_port: int) -> None:
        self.var = var.resolve()
        self.run = self.var / "run"
        self.gateway_port = gateway_port
        self.ops_port = ops_port
        self.ports = registry.local_ports(first_port)

    # -- environment ---------------------------------------------------------------------
    @property
    def admin_key_file(self) -> Path:
        return self.var / "admin_api_key"

    @property
    def app_key_file(self) -> Path:
        return self.var / "app_api_key"

    @property
    def user_token_secret_file(self) -> Path:
        return self.var / "user_token_secret"

    def env(self) -> dict[str, str]:
        """What every child process sees: one DB, one model root, peers at their local ports."""
        env = dict(os.environ)
        env.setdefault("DATABASE_URL", f"sqlite+aiosqlite:///{self.var / 'musicspace.db'}")
        env.setdefault("MODEL_ROOT", str(self.var / "models"))
        env["ADMIN_API_KEY_FILE"] = str(self.admin_key_file)
        env["APP_API_KEY_FILE"] = str(self.app_key_file)
        env["USER_TOKEN_SECRET_FILE"] = str(self.user_token_secret_file)
        for name, port in self.ports.items():
            env[f"{name.upper()}_URL"] = f"http://127.0.0.1:{port}"
        return env

    def ensure_credentials(self) -> None:
        """Each credential file once (0600); an existing one is kept, never rotated."""
        self.var.mkdir(parents=True, exist_ok=True)
        for path in (self.admin_key_file, self.app_key_file, self.user_token_secret_file):
            if path.is_file():
                continue
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                # 48 random bytes: above HS256's 32-byte minimum for the signing key too.
                handle.write(secrets.token_urlsafe(48) + "\n")

    # -- processes -----------------------------------------------------------------------
    def pid_file(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.run / f"{name}.log"

    def command(self, name: str) -> list[str]:
        if name == "traefik":
            return [str(TRAEFIK), f"--configFile={self.run / 'gateway' / 'traefik.yml'}"]
        return [str(VENV_PY), "-m", f"musicspace_{name}"]

    def running_pid(self, name: str) -> int | None:
        """The pid from the pid file if that process is alive and is the one we started."""
        try:
            record = json.loads(self.pid_file(name).read_text())
            cmdline = Path(f"/proc/{record['pid']}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, KeyError):
            return None
        started = [part.encode() for part in record["cmd"]]
        return record["pid"] if cmdline[: len(started)] == started else None

    def start(self, name: str) -> None:
        if self.running_pid(name):
            print(f"  {name}: already running (pid {self.running_pid(name)})")
            return
        env = self.env()
        if name != "traefik":
            env |= {"HOST": "127.0.0.1", "PORT": str(self.ports[name])}
        cmd = self.command(name)
        with self.log_file(name).open("ab") as log:
            # A session of its own: `down` signals the group, and Ctrl-C in the shell does not.
            process = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.pid_file(name).write_text(json.dumps({"pid": process.pid, "cmd": cmd}))
        # Until the child has exec'd, /proc shows our own command line: wait so that
        # running_pid() (which compares command lines) recognises it from now on.
        deadline = time.monotonic() + 5
        while (
            self.running_pid(name) is None
            and process.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.01)
        print(
            f"  {name}: started (pid {process.pid}, log {self.log_file(name).relative_to(ROOT) if self.log_file(name).is_relative_to(ROOT) else self.log_file(name)})"
        )

    def stop(self, name: str) -> None:
        pid = self.running_pid(name)
        if pid is None:
            self.pid_file(name).unlink(missing_ok=True)
            return
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.running_pid(name):
            time.sleep(0.2)
        if self.running_pid(name):
            os.killpg(pid, signal.SIGKILL)
        self.pid_file(name).unlink(missing_ok=True)
        print(f"  {name}: stopped (pid {pid})")

    # -- readiness -----------------------------------------------------------------------
    def probe(self, name: str) -> tuple[bool, str]:
        """(ready, reason): /readyz for a service, /ping on the ops entry point for Traefik."""
        url = (
            f"http://127.0.0.1:{self.ops_port}/ping"
            if name == "traefik"
            else f"http://127.0.0.1:{self.ports[name]}/readyz"
        )
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                return response.status == 200, "ready"
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")
            try:
                checks = json.loads(body).get("checks", {})
                reason = (
                    ", ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok") or body[:200]
                )
            except ValueError:
                reason = body[:200]
            return False, f"{exc.code} {reason}"
        except (OSError, urllib.error.URLError) as exc:
            return False, str(getattr(exc, "reason", exc))

    def wait_ready(self, names: list[str], timeout_s: float) -> dict[str, str]:
        """Poll until every name is ready; return {name: reason} of those that are not."""
        deadline = time.monotonic() + timeout_s
        pending = {name: "starting" for name in names}
        last_print = 0.0
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                if not self.running_pid(name):
                    pending[name] = "exited"
                    continue
                ready, reason = self.probe(name)
                if ready:
                    print(f"  {name}: ready")
                    del pending[name]
                else:
                    pending[name] = reason
            if pending and time.monotonic() - last_print > 10:
                print(
                    "  waiting for: " + "; ".join(f"{n} ({r})" for n, r in pending.items()),
                    flush=True,
                )
                last_print = time.monotonic()
            if all(reason.startswith("exited") for reason in pending.values()):
                break
            time.sleep(0.5)
        return pending

    def gateway_answers(self, *, timeout_s: float) -> bool:
        """True once the gateway routes to m1 (any answer but Traefik's 503 "no available server")."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # our own self-signed certificate
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            url = f"https://127.0.0.1:{self.gateway_port}/api/m1/status/1"
            try:
                urllib.request.urlopen(url, timeout=5, context=context)
                return True
            except urllib.error.HTTPError as exc:
                if exc.code != 503:
                    return True  # e.g. 404 for an unknown user: the route works
            except OSError:
                pass
            time.sleep(1)
        return False


def _venv_run(args: list[str], env: dict[str, str]) -> bool:
    return subprocess.run([str(VENV_PY), *args], cwd=ROOT, env=env, check=False).returncode == 0


def up(stack: Stack, *, timeout_s: float, skip_bootstrap: bool) -> int:
    if not VENV_PY.exists():
        print("no .venv: run `make up` (it installs the environment first)", file=sys.stderr)
        return 2
    stack.run.mkdir(parents=True, exist_ok=True)
    env = stack.env()
    print("==> certificate and credentials")
    if not _venv_run(["deploy/gen_cert.py"], env):
        return 1
    stack.ensure_credentials()
    failed_bootstrap = False
    if not skip_bootstrap:
        print(
            "==> bootstrap: migrate, demo data, global models (the first run trains for a few minutes)"
        )
        failed_bootstrap = not _venv_run(["deploy/bootstrap.py", "--keep-going"], env)
        if failed_bootstrap:
            print(
                "!! bootstrap had failures (above): the services whose models are missing will not become ready",
                file=sys.stderr,
            )
    print("==> gateway config")
    render = [
        "deploy/render_gateway.py",
        "local",
        "--out",
        str(stack.run / "gateway"),
        "--gateway-port",
        str(stack.gateway_port),
        "--ops-port",
        str(stack.ops_port),
        "--first-port",
        str(stack.ports[SERVICES[0]]),
    ]
    if not _venv_run(render, env):
        return 1
    print("==> starting the services")
    for name in SERVICES:
        stack.start(name)
    not_ready = stack.wait_ready(list(SERVICES), timeout_s)
    # Traefik last: its first health check then finds the services ready, not still starting.
    print("==> starting the gateway")
    stack.start("traefik")
    not_ready |= stack.wait_ready(["traefik"], 30)
    if not_ready:
        print("!! not ready:", file=sys.stderr)
        for name, reason in not_ready.items():
            print(f"   {name}: {reason} (log: {stack.log_file(name)})", file=sys.stderr)
        print("   the rest keeps running; `make down` stops everything", file=sys.stderr)
        return 1
    if not stack.gateway_answers(timeout_s=30):
        print(
            f"!! the gateway does not route to m1 on https://localhost:{stack.gateway_port}",
            file=sys.stderr,
        )
        return 1
    print(
        f"\nMusicSpace is up: https://localhost:{stack.gateway_port}/api/...  (self-signed: curl -k)"
    )
    print(
        f'  try: curl -k -H "Authorization: Bearer $(cat {stack.app_key_file})" '
        f"https://localhost:{stack.gateway_port}/api/m1/status/1"
    )
    print(f"  app credential (the web backend, any user): {stack.app_key_file}")
    print(
        f"  user tokens: JWT HS256 signed with {stack.user_token_secret_file}, "
        '{"sub": "<user id>", "exp": ...} (README: Credentials)'
    )
    print(
        f"  admin key (ops routes): {stack.admin_key_file}   logs: {stack.run}/*.log   stop: make down"
    )
    return 0


def down(stack: Stack) -> int:
    for name in ("traefik", *SERVICES):
        stack.stop(name)
    return 0


def status(stack: Stack) -> int:
    all_ready = True
    for name in (*SERVICES, "traefik"):
        pid = stack.running_pid(name)
        ready, reason = stack.probe(name) if pid else (False, "not running")
        all_ready &= ready
        port = stack.gateway_port if name == "traefik" else stack.ports[name]
        print(f"  {name:<11} port {port:<6} pid {pid or '-':<8} {'ready' if ready else reason}")
    return 0 if all_ready else 1


def main() -> None:
    # Our lines and the children's (bootstrap, CLI) share the terminal or log: keep their order.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description="MusicSpace local stack (no Docker)")
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument(
        "--var",
        type=Path,
        default=Path(os.environ.get("MUSICSPACE_VAR", ROOT / "var")),
        help="state folder: DB, models, run/",
    )
    parser.add_argument(
        "--gateway-port", type=int, default=int(os.environ.get("GATEWAY_PORT", 8443))
    )
    parser.add_argument(
        "--ops-port",
        type=int,
        default=int(os.environ.get("GATEWAY_OPS_PORT", 8082)),
        help="Traefik ping/metrics (127.0.0.1 only)",
    )
    parser.add_argument(
        "--first-port",
        type=int,
        default=int(os.environ.get("FIRST_SERVICE_PORT", registry.SERVICES[0].port)),
        help="m1's port; the other services (registry order) follow",
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait for readiness"
    )
    parser.add_argument(
        "--skip-bootstrap", action="store_true", help="start without migrating/importing/training"
    )
    args = parser.parse_args()
    stack = Stack(
        var=args.var,
        gateway_port=args.gateway_port,
        first_port=args.first_port,
        ops_port=args.ops_port,
    )
    if args.command == "up":
        sys.exit(up(stack, timeout_s=args.timeout, skip_bootstrap=args.skip_bootstrap))
    sys.exit(down(stack) if args.command == "down" else status(stack))


if __name__ == "__main__":
    main()
