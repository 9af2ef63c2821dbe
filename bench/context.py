"""What a benchmark gets: a running stack behind the gateway, a load generator, machine facts.

A benchmark module `bench/bench_<name>.py` exposes `run(context) -> dict`; bench/run.py writes
the dict to bench/results/<name>.json. The stack is started once per `make bench` (lazily, by
the first benchmark that asks for it) against a persistent MariaDB database holding the full
demo data (`musicspace_bench` on TEST_MARIADB_URL's server, or BENCH_DATABASE_URL) and the
model folder var/bench/models, so the global models are trained on the first run only.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import platform
import secrets
import subprocess
import sys
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import credentials  # noqa: E402
from bench.loadgen import run_load, run_open_load  # noqa: E402
from deploy import gen_cert, render_gateway  # noqa: E402
from musicspace_shared import registry  # noqa: E402
from tests.processes import ServiceProcess, free_port  # noqa: E402
from tests.traefik import running_traefik  # noqa: E402

SERVICES = registry.names()
T = TypeVar("T")
HEALTH_PROBE = "/_bench/healthz"
MARIADB_SERVER = os.environ.get("TEST_MARIADB_URL", "mysql+asyncmy://root@127.0.0.1:3306").rstrip(
    "/"
)


def start_gateway(
    stack: ExitStack, work: Path, ports: dict[str, int], logs: Path, probe: str = "m1"
) -> str:
    """A certificate, the gateway's config for the services on `ports` (rate limits out of
    the way: the load generator is one client) and Traefik, running until `stack` closes; the
    gateway's base URL. HEALTH_PROBE answers with the /healthz of the service `probe`."""
    gen_cert.generate(out_dir=work / "certs")
    gateway_port, ops_port = free_port(), free_port()
    static = render_gateway.render_local(
        out_dir=work / "gateway",
        ports=ports,
        cert_dir=work / "certs",
        gateway_port=gateway_port,
        ops_port=ops_port,
        listen="127.0.0.1",
        rate_average=1_000_000,
        rate_burst=1_000_000,
        health_probe_path=HEALTH_PROBE,
        health_probe_service=probe,
    )
    stack.enter_context(running_traefik(static, ops_port=ops_port, log_path=logs / "traefik.log"))
    return f"https://127.0.0.1:{gateway_port}"


@dataclass
class BenchStack:
    """A running stack: gateway base URL, per-service direct URLs, admin key, a sample user."""

    gateway_url: str
    health_url: str  # m1's /healthz through the same gateway (a bench-only route)
    service_urls: dict[str, str]
    admin_key: str
    database_url: str
    model_root: Path
    env: dict[str, str]
    pids: dict[str, int]
    sample_user_ids: list[int]
    unavailable: dict[str, str] = field(default_factory=dict)

    def rss_mb(self) -> dict[str, float]:
        """Resident memory of each service process now (from /proc)."""
        out = {}
        for name, pid in self.pids.items():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        out[name] = round(int(line.split()[1]) / 1024, 1)
            except OSError:
                continue
        return out


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of another process (a service under load), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Call:
    """One request of a load plan; `label` groups the latencies in the result."""

    label: str
    method: str
    url: str
    json: Any = None


@dataclass
class LoadResult:
    seconds: float
    samples: list[tuple[str, int, float]]  # (label, status or 0 for a transport error, ms)

    @staticmethod
    def _stats(samples: list[tuple[str, int, float]], seconds: float) -> dict[str, Any]:
        ordered = sorted(ms for _, _, ms in samples)
        statuses: dict[str, int] = {}
        for _, status, _ in samples:
            statuses[str(status)] = statuses.get(str(status), 0) + 1

        def pct(p: float) -> float | None:
            return (
                round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 2)
                if ordered
                else None
            )

        errors = sum(1 for _, status, _ in samples if status == 0 or status >= 500 or status == 429)
        return {
            "requests": len(samples),
            "errors": errors,
            "statuses": dict(sorted(statuses.items())),
            "req_per_s": round(len(samples) / seconds, 1) if seconds else None,
            "p50_ms": pct(50),
            "p90_ms": pct(90),
            "p99_ms": pct(99),
            "max_ms": round(ordered[-1], 2) if ordered else None,
        }

    def summary(self) -> dict[str, Any]:
        """Overall figures plus one entry per label."""
        labels = sorted({label for label, _, _ in self.samples})
        return {
            "seconds": round(self.seconds, 2),
            **self._stats(self.samples, self.seconds),
            "by_label": {
                lab: self._stats([x for x in self.samples if x[0] == lab], self.seconds)
                for lab in labels
            },
        }


def read_db(database_url: str, read: Callable[[Any], Awaitable[T]]) -> T:
    """`await read(session)` on a session of the bench database, from synchronous code: a
    benchmark's own reads (sample users, the catalog for in-process timings)."""
    from musicspace_shared.db.engine import make_engine, make_sessionmaker

    async def run() -> T:
        engine = make_engine(url=database_url)
        try:
            async with make_sessionmaker(engine)() as session:
                return await read(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _try_lock(handle: Any) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class BenchContext:
    def __init__(self, *, quick: bool = False) -> None:
        self.quick = quick
        self.root = ROOT
        self.work = ROOT / "var" / "bench"
        self.work.mkdir(parents=True, exist_ok=True)
        self._exit = ExitStack()
        self._stack: BenchStack | None = None

    # -- facts recorded next to every result ------------------------------------------------
    @staticmethod
    def machine() -> dict[str, Any]:
        return {
            "cpus": os.cpu_count(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "platform": platform.platform(),
            "note": "shared 2-core machine: other processes may add noise",
        }

    # -- the stack ----------------------------------------------------------------------------
    def database_url(self) -> str:
        """The persistent bench database (created, migrated and seeded with the demo data once)."""
        return os.environ.get("BENCH_DATABASE_URL", f"{MARIADB_SERVER}/musicspace_bench")

    def _ensure_database(self, url: str) -> None:
        import sqlalchemy as sa

        from musicspace_shared.db.engine import make_engine

        if url.startswith("sqlite"):
            return
        server, name = url.rsplit("/", 1)

        async def create() -> None:
            engine = make_engine(url=server + "/")
            async with engine.begin() as conn:
                await conn.execute(
                    sa.text(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
                )
            await engine.dispose()

        asyncio.run(create())

    def stack(self) -> BenchStack:
        """Start (once) the five services and Traefik with a rate limit high enough for load."""
        if self._stack is not None:
            return self._stack
        # One bench stack at a time per checkout: two would share var/bench/models (the
        # embedded Chroma store does not survive two writers) and fight for the CPU.
        lock = self._exit.enter_context((self.work / ".stack.lock").open("w"))
        if not _try_lock(lock):
            print("bench: waiting for another bench run (var/bench/.stack.lock)", flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        url = self.database_url()
        self._ensure_database(url)
        model_root = self.work / "models"
        admin_key_file = self.work / "admin_api_key"
        if not admin_key_file.exists():
            admin_key_file.write_text(secrets.token_urlsafe(24))
        ports = {name: free_port() for name in SERVICES}
        env = {
            "DATABASE_URL": url,
            "MODEL_ROOT": str(model_root),
            "ADMIN_API_KEY_FILE": str(admin_key_file),
            "LOG_LEVEL": "WARNING",
            **credentials.ENV,
            # Catalog checks every 5 s (bench_sync refreshes the catalog back to back; the
            # other benchmarks do not change it, so a check is one aggregate query).
            "M1_CATALOG_CHECK_S": "5",
            "M2_CATALOG_CHECK_S": "5",
            "M3_CATALOG_CHECK_S": "5",
            **{f"{name.upper()}_URL": f"http://127.0.0.1:{port}" for name, port in ports.items()},
        }
        print(
            "bench: bootstrap (migrate, demo import, missing models: the first run trains)",
            flush=True,
        )
        subprocess.run(
            [sys.executable, str(ROOT / "deploy" / "bootstrap.py"), "--keep-going"],
            env=os.environ | env,
            check=False,
        )
        logs = self.work / "logs"
        logs.mkdir(exist_ok=True)
        services = {
            n: ServiceProcess(name=n, port=ports[n], env=env, log_path=logs / f"{n}.log")
            for n in SERVICES
        }
        unavailable: dict[str, str] = {}
        for service in services.values():
            service.start()
            self._exit.callback(service.stop)
        for name, service in services.items():
            try:
                service.wait_ready(timeout_s=300)
            except (RuntimeError, TimeoutError) as exc:
                unavailable[name] = str(exc)[-500:]
        base = start_gateway(self._exit, self.work, ports, logs)
        self._stack = BenchStack(
            gateway_url=base,
            health_url=base + HEALTH_PROBE,
            service_urls={n: s.url for n, s in services.items()},
            admin_key=admin_key_file.read_text().strip(),
            database_url=url,
            model_root=model_root,
            env=env,
            unavailable=unavailable,
            pids={n: s.process.pid for n, s in services.items() if s.process is not None},
            sample_user_ids=self._sample_users(url),
        )
        return self._stack

    @staticmethod
    def _sample_users(url: str, count: int = 50) -> list[int]:
        """Demo users with at least 10 PMS tracks (deterministic order)."""
        import sqlalchemy as sa

        query = sa.text(
            "SELECT user_id FROM user_track GROUP BY user_id HAVING COUNT(*) >= 10 ORDER BY user_id LIMIT :n"
        )

        async def read(session: Any) -> list[int]:
            return [int(r[0]) for r in await session.execute(query, {"n": count})]

        return read_db(url, read)

    def close(self) -> None:
        self._exit.close()

    # -- shared measurements ------------------------------------------------------------------
    def recommend_latency(
        self,
        service: str,
        users: list[int],
        *,
        limit: int,
        seconds: float,
        concurrency: int,
        goal_p99_ms: float,
    ) -> dict[str, Any]:
        """A recommender's latency (m1, m3): /healthz through the gateway (the floor any route
        pays on this machine), /api/<service>/recommend through the gateway (the goal's figure)
        and sent to the service directly (the gateway's share), rotating over `users`."""
        stack = self.stack()
        route = f"/api/{service}/recommend"
        result: dict[str, Any] = {
            "healthz_gateway": self.load(
                [Call("healthz", "GET", stack.health_url)],
                concurrency=concurrency,
                seconds=seconds,
            ).summary()
        }
        for label, base in (("recommend", stack.gateway_url), ("recommend_direct", None)):
            url = (base or stack.service_urls[service]) + route
            calls = [Call(label, "POST", url, {"user_id": u, "limit": limit}) for u in users]
            key = "recommend_gateway" if base else "recommend_direct"
            result[key] = self.load(calls, concurrency=concurrency, seconds=seconds).summary()
        p99 = result["recommend_gateway"]["p99_ms"]
        result["goal_met"] = (
            p99 is not None and p99 <= goal_p99_ms and result["recommend_gateway"]["errors"] == 0
        )
        return result

    # -- load ---------------------------------------------------------------------------------
    def load(
        self,
        calls: list[Call],
        *,
        concurrency: int = 16,
        seconds: float | None = None,
        total: int | None = None,
        warmup: int = 20,
        headers: dict[str, str] | None = None,
        on_tick: Any = None,
    ) -> LoadResult:
        """Closed-loop load: `concurrency` clients send the calls in turn (round robin), for
        `seconds` or until `total` requests. The client (bench/loadgen.py, a lean uvloop client)
        runs on this machine, so its own CPU use is part of every figure: compare within one
        run, e.g. a route next to /healthz. on_tick(elapsed_s) is called about once a second
        (e.g. to sample memory). Requests carry the app credential unless `headers` replace it."""
        elapsed, samples = run_load(
            calls,
            concurrency=concurrency,
            seconds=seconds,
            total=total,
            warmup=warmup,
            headers=credentials.AUTH if headers is None else headers,
            on_tick=on_tick,
        )
        return LoadResult(seconds=elapsed, samples=samples)

    def open_load(
        self,
        calls: list[Call],
        *,
        rate: float,
        seconds: float,
        headers: dict[str, str] | None = None,
    ) -> LoadResult:
        """Open-loop load: `rate` requests per second (a steady arrival rate) for `seconds`;
        each latency counts from when the request was due (bench/loadgen.py)."""
        elapsed, samples = run_open_load(
            calls,
            rate=rate,
            seconds=seconds,
            headers=credentials.AUTH if headers is None else headers,
        )
        return LoadResult(seconds=elapsed, samples=samples)
