"""Scale benchmark (issue 18, parts 1 and 4): a generated data set on its own MariaDB database.

    python bench/run.py scale            # 1M tracks / 100k users / 10M interactions
    SCALE_TRACKS=200000 SCALE_USERS=20000 SCALE_INTERACTIONS=2000000 python bench/run.py scale
    python bench/run.py scale --quick    # 20k / 2k / 200k: a smoke test

Steps, each cached on disk by the sizes and seed (var/bench/scale/<key>/; SCALE_REIMPORT=1 and
SCALE_RETRAIN=1 redo the import and the training):
1. `musicspace generate` writes the data set (time and peak RSS of the generator);
2. a fresh database `msbench_scale_<key>` (SCALE_DATABASE names another) is migrated and
   the three files imported with `musicspace import` (time and peak RSS of each), then its
   size read from information_schema;
3. the global models of m2, m1 and m3 are trained with `musicspace train` (time, peak RSS,
   and each trainer's own summary: rows, sampling);
4. m2, m1, m3 and enrichment are started one after another: start-up time (process start to
   /readyz 200) and resident memory once ready (the service's process, and with its worker
   processes), from /proc; m2 and m3 with no saved state on their volume (the first start
   after an import), then a second replica of each, which starts from the content space and
   the snapshot the first ones saved (musicspace_shared.saved_state);
5. through Traefik, open loop (bench/loadgen.py: latency from each request's due time), at
   SCALE_RATE requests/s (default 20, as bench_cold) for SCALE_SECONDS: recommend of m1, m2
   and m3, each user asked once (distinct users, none asked before: no answer cache can hit),
   and m2 /similar with distinct tracks, each next to /healthz through the same gateway;
6. enrich-all end to end against the raw set-based UPDATE of the same lacking tracks
   (bench/bench_enrichment.py's round, with the real m2 on this data), each timed write
   begun on a quiet machine: every write before it set off the other services' catalog
   rebuilds, which used to overlap the next timed write or not, by chance.
The llm service (its index and search) on the same data: bench_scale_llm.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench import bench_enrichment, credentials  # noqa: E402
from bench.bench_sync import events_count, wait_for_background_training  # noqa: E402
from bench.context import HEALTH_PROBE, MARIADB_SERVER, Call, LoadResult, start_gateway  # noqa: E402
from bench.loadgen import run_open_load  # noqa: E402
from musicspace_cli.generate import GENERATOR_VERSION  # noqa: E402
from musicspace_shared import registry  # noqa: E402
from musicspace_shared.db.engine import make_engine  # noqa: E402
from tests.processes import ServiceProcess, free_port  # noqa: E402

CLI = [sys.executable, "-m", "musicspace_cli.main"]
WORK = ROOT / "var" / "bench" / "scale"
STARTED = ("m2", "m1", "m3", "enrichment")  # in this order: enrichment calls m2
MEASURED = ("m1", "m2", "m3")
SAVED_STATE = ("m2", "m3")  # services that start from state kept on the volume
GOALS = {"startup_s": 60.0, "rss_mb": 3072.0, "recommend_p99_ms": 100.0}
# Each write of the enrichment step sets off m1's, m2's and m3's catalog rebuilds (a minute and
# more of both cores at 1M) once their next check sees it; m2 checks every 10 s here (default
# 60) so that the wait for them before each timed write stays short.
CATALOG_CHECK_S = {"M1_CATALOG_CHECK_S": 5, "M2_CATALOG_CHECK_S": 10, "M3_CATALOG_CHECK_S": 10}
QUIET_CORES = 0.3  # the machine is quiet below this many busy cores ...
QUIET_FOR_S = max(CATALOG_CHECK_S.values()) + 3  # ... for longer than any catalog check period


@dataclass(frozen=True)
class Scale:
    tracks: int
    users: int
    interactions: int
    seed: int
    rate: float
    seconds: float

    @property
    def key(self) -> str:
        return (
            f"t{self.tracks}-u{self.users}-i{self.interactions}-s{self.seed}-g{GENERATOR_VERSION}"
        )

    @classmethod
    def from_env(cls, quick: bool) -> Scale:
        small = (20_000, 2_000, 200_000) if quick else (1_000_000, 100_000, 10_000_000)
        env = os.environ.get
        return cls(
            tracks=int(env("SCALE_TRACKS", small[0])),
            users=int(env("SCALE_USERS", small[1])),
            interactions=int(env("SCALE_INTERACTIONS", small[2])),
            seed=int(env("SCALE_SEED", 0)),
            rate=float(env("SCALE_RATE", 20)),
            seconds=float(env("SCALE_SECONDS", 10 if quick else 30)),
        )


# ---------------------------------------------------------------- timed child processes


def _timed(args: list[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run a command: seconds, the child's peak RSS (wait4) and its last JSON line."""
    started = time.perf_counter()
    with log.open("ab") as out:
        child = subprocess.Popen(args, env=os.environ | env, stdout=out, stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(f"{' '.join(args[3:])} failed:\n" + "\n".join(tail))
    return {
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "summary": _last_json(log),
    }


def _last_json(log: Path) -> Any:
    """The last JSON object the command printed (`--json` output may span lines)."""
    text = log.read_text(errors="replace")
    start = text.rfind("\n{")
    try:
        return json.loads(text[start + 1 :]) if start >= 0 else None
    except json.JSONDecodeError:
        return None


def _cached(path: Path, redo: bool, make: Any) -> Any:
    if path.is_file() and not redo:
        return json.loads(path.read_text()) | {"cached": True}
    value = make()
    path.write_text(json.dumps(value, indent=2, default=str))
    return value


# ---------------------------------------------------------------- data set, database, models


def _dataset(scale: Scale, work: Path) -> dict[str, Any]:
    files = [work / f"{name}.csv.gz" for name in ("catalog", "playlists", "interactions")]

    def make() -> dict[str, Any]:
        out = work / "tmp"
        shutil.rmtree(out, ignore_errors=True)
        args = ["generate", "--out", str(out), "--json", "--seed", str(scale.seed)]
        args += ["--tracks", str(scale.tracks), "--users", str(scale.users)]
        args += ["--interactions", str(scale.interactions)]
        figures = _timed([*CLI, *args], {}, work / "generate.log")
        for path in files:
            (out / path.name).replace(path)
        out.rmdir()
        return figures

    redo = not all(path.is_file() for path in files)
    figures = _cached(work / "generate.json", redo, make)
    return figures | {"bytes": {path.name: path.stat().st_size for path in files}}


async def _admin(statement: str) -> None:
    engine = make_engine(url=MARIADB_SERVER + "/")
    async with engine.begin() as conn:
        await conn.execute(sa.text(statement))
    await engine.dispose()


def _import(url: str, work: Path) -> dict[str, Any]:
    name = url.rsplit("/", 1)[1]
    asyncio.run(_admin(f"DROP DATABASE IF EXISTS `{name}`"))
    asyncio.run(_admin(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    env = {"DATABASE_URL": url}
    log = work / "import.log"
    out: dict[str, Any] = {"migrate": _timed([*CLI, "db", "upgrade"], env, log)}
    for kind in ("catalog", "playlists", "interactions"):
        path = work / f"{kind}.csv.gz"
        out[kind] = _timed([*CLI, "import", kind, str(path), "--json"], env, log)
    return out


async def _db_size(url: str) -> dict[str, Any]:
    name = url.rsplit("/", 1)[1]
    engine = make_engine(url=url)
    query = sa.text(
        "SELECT table_name, table_rows, data_length, index_length FROM information_schema.tables"
        " WHERE table_schema = :name ORDER BY data_length + index_length DESC"
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query, {"name": name})).all()
        counts = {
            table: (await conn.execute(sa.text(f"SELECT COUNT(*) FROM `{table}`"))).scalar_one()
            for table in ("track", "user", "user_track", "interaction")
        }
        # What of the data set the server can answer from memory.
        buffer_pool = await conn.scalar(sa.text("SELECT @@innodb_buffer_pool_size"))
    await engine.dispose()
    mb = 1024 * 1024
    return {
        "total_mb": round(sum(r.data_length + r.index_length for r in rows) / mb, 1),
        "rows": counts,
        "buffer_pool_mb": round(int(buffer_pool) / mb, 1),
        "tables_mb": {
            r.table_name: {
                "data": round(r.data_length / mb, 1),
                "index": round(r.index_length / mb, 1),
            }
            for r in rows
            if r.data_length + r.index_length > mb
        },
    }


def _train(env: dict[str, str], work: Path, redo: bool) -> dict[str, Any]:
    """m2 first (the others may use its predictions); each family cached on its own."""
    out = {}
    for family in ("m2", "m1", "m3"):
        args = [*CLI, "train", family, "--json"]
        log = work / f"train_{family}.log"
        out[family] = _cached(
            work / f"train_{family}.json", redo, lambda args=args, log=log: _timed(args, env, log)
        )
    return out


# ---------------------------------------------------------------- services


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _tree(pid: int) -> list[int]:
    """The process and its descendants (a service's offload workers)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def _memory(pid: int) -> dict[str, float]:
    tree = 0.0
    for member in _tree(pid):
        try:
            tree += _rss_mb(member)
        except OSError:
            continue
    return {"rss_mb": round(_rss_mb(pid), 1), "with_workers_rss_mb": round(tree, 1)}


def _start(
    name: str,
    port: int,
    env: dict[str, str],
    logs: Path,
    stack: ExitStack,
    timeout_s: float = 1800,
    log_name: str | None = None,
) -> tuple[ServiceProcess, dict[str, Any]]:
    """Start a service and wait until it is ready: its start-up time and memory, with what the
    start met (InnoDB's pages read from disk meanwhile, the load average at its end)."""
    log_path = logs / f"{log_name or name}.log"
    service = ServiceProcess(name=name, port=port, env=env, log_path=log_path)
    reads = _disk_reads(env["DATABASE_URL"])
    started = time.perf_counter()
    service.start()
    stack.callback(service.stop)
    service.wait_ready(timeout_s=timeout_s)
    figures = {
        "startup_s": round(time.perf_counter() - started, 1),
        "innodb_disk_reads": _disk_reads(env["DATABASE_URL"]) - reads,
        "load_avg_1m_end": round(os.getloadavg()[0], 2),
    }
    assert service.process is not None
    return service, figures | _memory(service.process.pid)


def _second_replica(name: str, env: dict[str, str], logs: Path) -> dict[str, Any]:
    """Another replica of a running service, started and stopped: what a restart, a rolling
    update or a scale-out meets (the state its first replica saved on the volume)."""
    with ExitStack() as stack:
        _service, figures = _start(name, free_port(), env, logs, stack, log_name=f"{name}_2")
    return figures


def _wait_for_rebuilds(
    urls: dict[str, str],
    before: dict[str, float],
    timeout_s: float = 1800.0,
    settle_s: float = 90.0,
) -> dict[str, float]:
    """Until each service counted more catalog rebuilds than `before` (its count before the
    catalog changed) and then none for `settle_s`: a rebuild that began before the last change
    is followed by one that sees it (at 1M tracks about a check period and a build later). Per
    service, the seconds from the call until its last rebuild counted (0 when none came after
    the call), all watched from the same moment."""
    started = time.monotonic()
    seen = {name: events_count(url, "catalog_rebuilds") for name, url in urls.items()}
    last = dict.fromkeys(urls, started)
    while time.monotonic() - started < timeout_s:
        for name, url in urls.items():
            count = events_count(url, "catalog_rebuilds")
            if count > seen[name]:
                seen[name], last[name] = count, time.monotonic()
        now = time.monotonic()
        if all(seen[n] > before[n] and now - last[n] >= settle_s for n in urls):
            break
        time.sleep(1)
    return {name: round(at - started, 1) for name, at in last.items()}


# ---------------------------------------------------------------- load


def _busy_cores(interval_s: float = 1.0) -> float:
    """Cores busy (all processes) over the next `interval_s`, from /proc/stat."""

    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = values[3] + values[4]  # idle, iowait
        return sum(values[:8]) - idle, sum(values[:8])

    busy0, total0 = sample()
    time.sleep(interval_s)
    busy1, total1 = sample()
    return (busy1 - busy0) / max(total1 - total0, 1) * (os.cpu_count() or 1)


def _wait_until_quiet(timeout_s: float = 900.0) -> float:
    """Until no catalog rebuild runs or is due: the machine under QUIET_CORES for QUIET_FOR_S
    in a row (longer than every service's catalog check, so a write's rebuilds have begun and
    ended); the seconds waited."""
    started = quiet_since = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if _busy_cores() > QUIET_CORES:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_FOR_S:
            break
    return round(time.monotonic() - started, 1)


def _open(calls: list[Call], rate: float, seconds: float) -> dict[str, Any]:
    elapsed, samples = run_open_load(calls, rate=rate, seconds=seconds, headers=credentials.AUTH)
    return LoadResult(seconds=elapsed, samples=samples).summary()


def _rows(url: str, query: str) -> list[Any]:
    """A query's rows, on a connection of its own."""

    async def read() -> list[Any]:
        engine = make_engine(url=url)
        async with engine.connect() as conn:
            rows = list(await conn.execute(sa.text(query)))
        await engine.dispose()
        return rows

    return asyncio.run(read())


def _sample(url: str, query: str, count: int, seed: int) -> list[Any]:
    values = [row[0] for row in _rows(url, query)]
    random.Random(seed).shuffle(values)
    return values[:count]


def _disk_reads(url: str) -> int:
    """InnoDB's reads that missed its buffer pool so far (pages read from disk), server-wide."""
    ((_name, value),) = _rows(url, "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_reads'")
    return int(value)


def _phase_context(url: str, services: dict[str, ServiceProcess]) -> dict[str, Any]:
    """What else a phase met, to read its tail by: each measured service's catalog rebuilds and
    full garbage collections, InnoDB's disk reads and the machine's load. Taken before and
    after; `_phase_delta`."""
    count = lambda event: {n: events_count(services[n].url, event) for n in MEASURED}  # noqa: E731
    return {
        "rebuilds": count("catalog_rebuilds"),
        "gc_full_ms": count("gc_full_ms"),
        "disk_reads": _disk_reads(url),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def _phase_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {
        "catalog_rebuilds_during": {
            n: after["rebuilds"][n] - before["rebuilds"][n] for n in MEASURED
        },
        "gc_full_ms_during": {
            n: round(after["gc_full_ms"][n] - before["gc_full_ms"][n], 1) for n in MEASURED
        },
        "innodb_disk_reads": after["disk_reads"] - before["disk_reads"],
        "load_avg_1m_end": after["load_avg_1m"],
    }


def _latency(
    gateway: str,
    scale: Scale,
    users: list[int],
    tracks: list[str],
    db_url: str,
    services: dict[str, ServiceProcess],
) -> dict[str, Any]:
    """Each route at scale.rate with healthz beside it (so 2 x rate through the gateway)."""
    m2_url = services["m2"].url
    health = Call("healthz", "GET", gateway + HEALTH_PROBE)
    per_phase = int(scale.rate * scale.seconds)
    out: dict[str, Any] = {"rate_per_s": scale.rate, "seconds": scale.seconds}
    phases: dict[str, list[Call]] = {}
    for index, service in enumerate(MEASURED):
        # Distinct users per phase too: a user asked by m1 could share a cache with nobody,
        # but asking different users keeps each phase's DB reads cold as well.
        mine = users[index * per_phase : (index + 1) * per_phase]
        url = f"{gateway}/api/{service}/recommend"
        phases[f"{service}_recommend"] = [
            Call(service, "POST", url, {"user_id": u, "limit": 20}) for u in mine
        ]
    # m2 trains a user's SVM behind their first request and keeps it (no answer cache): the
    # same users again, once those trainings are done, measure a returning user's answer.
    phases["m2_recommend_returning"] = phases["m2_recommend"]
    phases["m2_similar"] = [
        Call("m2_similar", "GET", f"{gateway}/api/m2/similar/{t}?limit=20") for t in tracks
    ]
    for phase, calls in phases.items():
        if phase == "m2_recommend_returning":
            out["m2_background_training_wait_s"] = wait_for_background_training(m2_url)
        warm = calls[:5]
        _open(warm, rate=5, seconds=1)  # the route's first calls (imports, lazy state)
        mixed = [x for call in calls[5:] for x in (call, health)]
        before = _phase_context(db_url, services)
        summary = _open(mixed, rate=2 * scale.rate, seconds=len(mixed) / (2 * scale.rate))
        met = _phase_delta(before, _phase_context(db_url, services))
        row = summary["by_label"].get(calls[0].label, {})
        floor = summary["by_label"].get("healthz", {})
        out[phase] = {
            k: row.get(k) for k in ("requests", "errors", "statuses", "p50_ms", "p99_ms", "max_ms")
        } | {"healthz_p99_ms": floor.get("p99_ms"), "met": met}
    return out


# ---------------------------------------------------------------- the run


def work_dir(scale: Scale) -> Path:
    """The scale's cache on disk (data set, import and training figures, models, logs)."""
    work = WORK / scale.key
    work.mkdir(parents=True, exist_ok=True)
    return work


def database_url(scale: Scale) -> str:
    """The scale's own database: msbench_scale_<key>, or SCALE_DATABASE's name."""
    name = os.environ.get("SCALE_DATABASE") or f"msbench_scale_{scale.key.replace('-', '_')}"
    return f"{MARIADB_SERVER}/{name}"


def service_env(url: str, work: Path) -> dict[str, str]:
    """What every service of the scale bench runs with (models under the work dir)."""
    return {
        "DATABASE_URL": url,
        "MODEL_ROOT": str(work / "models"),
        "LOG_LEVEL": "WARNING",
        "ADMIN_API_KEY": bench_enrichment.ADMIN_KEY,
        **credentials.ENV,
    }


def sizes(scale: Scale) -> dict[str, int]:
    return {
        "tracks": scale.tracks,
        "users": scale.users,
        "interactions": scale.interactions,
        "seed": scale.seed,
    }


def prepare(scale: Scale) -> tuple[Path, str, dict[str, Any]]:
    """The data set generated and imported (both cached), the schema migrated: the work dir,
    the database URL, and the figures of generate, import (redone: "reimported"), migrate and
    the database's size."""
    work, url = work_dir(scale), database_url(scale)
    figures: dict[str, Any] = {"generate": _dataset(scale, work)}
    redo = os.environ.get("SCALE_REIMPORT") == "1" or not (work / "import.json").is_file()
    figures["import"] = _cached(work / "import.json", redo, lambda: _import(url, work))
    figures["reimported"] = redo
    # A data set imported by an older schema: migrations that reshape big tables cost here.
    figures["migrate"] = _timed([*CLI, "db", "upgrade"], {"DATABASE_URL": url}, work / "import.log")
    figures["database"] = asyncio.run(_db_size(url))
    return work, url, figures


def begin(context: Any, goals: dict[str, float]) -> tuple[Scale, dict[str, Any]]:
    """A scale run's sizes (SCALE_* or --quick) and the head of its result."""
    scale = Scale.from_env(bool(getattr(context, "quick", False)))
    return scale, {
        "sizes": sizes(scale),
        "goals": goals,
        "load_avg_start": [round(x, 2) for x in os.getloadavg()],
    }


def run(context: Any = None) -> dict[str, Any]:
    scale, result = begin(context, GOALS)
    work, url, figures = prepare(scale)
    redo = figures.pop("reimported")
    result |= figures
    models = work / "models"
    env = service_env(url, work)
    retrain = redo or os.environ.get("SCALE_RETRAIN") == "1"
    if retrain:
        shutil.rmtree(models, ignore_errors=True)
    result["training"] = _train(env, work, retrain)
    # Per-user models of an earlier run would make its users returning ones.
    # State saved by an earlier run (m2's space, m3's snapshot) would make a first start a
    # replica's (measured below, on its own).
    saved = ("M2/space", "M3/snapshot")
    for folder in ("M1/user_models", "M2/user_svm_models", "M3/user_models", *saved):
        shutil.rmtree(models / folder, ignore_errors=True)
    ports = {name: free_port() for name in registry.names()}
    env |= {f"{n.upper()}_URL": f"http://127.0.0.1:{p}" for n, p in ports.items()}
    env |= {"ENRICHMENT_NOTIFY_LLM": "false"} | {k: str(v) for k, v in CATALOG_CHECK_S.items()}
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    # The database's own background work after an import or training (purge, flushing)
    # would land on the first starts.
    result["quiet_before_start_s"] = _wait_until_quiet()
    with ExitStack() as stack:
        services: dict[str, ServiceProcess] = {}
        result["services"] = {}
        for name in STARTED:
            services[name], result["services"][name] = _start(name, ports[name], env, logs, stack)
            print(f"   {name}: {result['services'][name]}", flush=True)
        result["second_replicas"] = {n: _second_replica(n, env, logs) for n in SAVED_STATE}
        print(f"   second replicas: {result['second_replicas']}", flush=True)
        gateway = start_gateway(stack, work, ports, logs)
        count = int(scale.rate * scale.seconds) + 5
        users = _sample(
            url,
            "SELECT user_id FROM user_track GROUP BY user_id HAVING COUNT(*) >= 10",
            3 * count,
            scale.seed,
        )
        tracks = _sample(
            url, "SELECT track_id FROM track WHERE features_source IS NOT NULL", count, scale.seed
        )
        result["latency"] = _latency(gateway, scale, users, tracks, url, services)
        result["memory_after_load"] = {
            n: _memory(s.process.pid) for n, s in services.items() if s.process is not None
        }
        before = {n: events_count(services[n].url, "catalog_rebuilds") for n in SAVED_STATE}
        lacking = lambda: bench_enrichment._lacking_ids(url)  # noqa: E731
        result["enrichment"] = bench_enrichment._scenario(
            url, lacking, services["m2"].url, services["enrichment"], 1, _wait_until_quiet
        )
        # The catalog changed (features written): m2 and m3 rebuild in their workers, which
        # keep what they built for the next change.
        result["rebuild_after_enrichment_s"] = _wait_for_rebuilds(
            {n: services[n].url for n in SAVED_STATE}, before
        )
        result["memory_after_enrichment"] = {
            n: _memory(s.process.pid) for n, s in services.items() if s.process is not None
        }
    result["goal_met"] = {
        "startup": all(s["startup_s"] <= GOALS["startup_s"] for s in result["services"].values()),
        "startup_second_replicas": all(
            s["startup_s"] <= GOALS["startup_s"] for s in result["second_replicas"].values()
        ),
        "memory": all(
            s["with_workers_rss_mb"] <= GOALS["rss_mb"] for s in result["services"].values()
        ),
        "recommend_p99": {
            s: (result["latency"][f"{s}_recommend"]["p99_ms"] or 1e9) <= GOALS["recommend_p99_ms"]
            for s in MEASURED
        },
        "enrichment": result["enrichment"]["goal_met"],
    }
    result["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["note"] = "shared 2-core machine, loaded by other work: times are upper bounds"
    return result
