"""First-visit recommend of one service, in process, on a scale data set (issue 18, part 4).

    SCALE_TRACKS=100000 SCALE_USERS=10000 SCALE_INTERACTIONS=1000000 \\
        python bench/recommend_inproc.py m2 [--users 300] [--rate 20] [--profile 0]

Uses the data set, database and global models `python bench/run.py scale` prepared for those
sizes (var/bench/scale/<key>/). Starts the service's app in this process (its lifespan: the
catalog, the models), removes every per-user model, then asks `--users` distinct users with
>= 10 tracks, each once (first visits), through ASGI: open loop at `--rate` requests/s
(latency counted from each request's due time, so a stall is not hidden), and reports
p50/p90/p99 and the process' CPU per request (background work included). `--profile N`
then asks N more users with the CPU pool run inline under cProfile (the whole request path in
one profile; OpenMP limited to one thread, as in the pool). No gateway, no other service:
what the service itself costs. Also the process' resident memory (with its worker
processes', from /proc) when ready, after the first calls and after the load, and for m2
`--recall N` (50): N of the users asked again with m2's candidate index and without it
(scoring every track), compared (recall of the exact top 20).
SCALE_DATABASE names the database (default msbench_scale_<key>, as bench_scale).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib
import io
import json
import os
import pstats
import random
import resource
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from bench.bench_scale import WORK, Scale, _memory, database_url  # noqa: E402
from musicspace_shared.db.engine import make_engine  # noqa: E402

OFFSET = {"m1": 0, "m2": 1000, "m3": 2000}  # distinct users per service


async def _users(url: str) -> list[int]:
    engine = make_engine(url=url)
    query = "SELECT user_id FROM user_track GROUP BY user_id HAVING COUNT(*) >= 10 ORDER BY user_id"
    async with engine.connect() as conn:
        users = [r[0] for r in await conn.execute(sa.text(query))]
    await engine.dispose()
    random.Random(0).shuffle(users)
    return users


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))], 1)


async def _run(service: str, users: int, rate: float, profile: int, recall: int) -> dict[str, Any]:
    pool = (await _users(os.environ["DATABASE_URL"]))[OFFSET[service] :]
    app = importlib.import_module(f"musicspace_{service}.app").create_app()
    headers = {"Authorization": f"Bearer {os.environ['APP_API_KEY']}"}
    started = time.perf_counter()
    out: dict[str, Any] = {"service": service, "load_avg_start": os.getloadavg()}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench", headers=headers
        ) as client,
    ):
        for _ in range(3600):  # m1 and m3 build their catalog in a worker after start-up
            if (await client.get("/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.5)
        out["ready_s"] = round(time.perf_counter() - started, 1)
        out["memory_ready_mb"] = _memory(os.getpid())
        url = f"/api/{service}/recommend"

        async def ask(user: int) -> dict[str, Any]:
            response = await client.post(url, json={"user_id": user, "limit": 20})
            assert response.status_code == 200, response.text
            return response.json()  # type: ignore[no-any-return]

        for user in pool[:3]:
            await ask(user)  # the route's first calls (lazy state: m2 builds its space here)
        out["memory_warm_mb"] = _memory(os.getpid())
        latencies: list[float] = []
        answers: dict[str, int] = {}
        cpu, t0 = time.process_time(), time.perf_counter()

        async def one(i: int, user: int) -> None:
            due = t0 + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            body = await ask(user)
            latencies.append((time.perf_counter() - due) * 1000)
            kind = body.get("strategy") or body.get("model") or "?"
            answers[kind] = answers.get(kind, 0) + 1

        measured = pool[3 : 3 + users]
        await asyncio.gather(*(one(i, u) for i, u in enumerate(measured)))
        runtime = app.state.runtime
        queue = getattr(runtime, "svm_training", None)
        if queue is not None:
            await queue.idle()  # its CPU belongs to these requests
        out |= {
            "users": len(latencies),
            "rate_per_s": rate,
            "latency_ms": {p: _pct(latencies, float(p[1:])) for p in ("p50", "p90", "p99")},
            "max_ms": round(max(latencies), 1),
            "process_cpu_ms_per_request": round(
                (time.process_time() - cpu) * 1000 / len(latencies), 1
            ),
            "answers": answers,
            "load_avg_end": os.getloadavg(),
            "memory_after_load_mb": _memory(os.getpid()) | {"peak_rss_mb": _peak_rss_mb()},
        }
        if recall and service == "m2":
            out["candidates_vs_exact"] = await _m2_recall(app, ask, measured[:recall])
        if profile:
            from threadpoolctl import threadpool_limits

            async def inline(func: Any, *args: Any, **kwargs: Any) -> Any:
                return func(*args, **kwargs)

            runtime.run_cpu = inline
            threadpool_limits(limits=1)
            profiler = cProfile.Profile()
            profiler.enable()
            for user in pool[3 + users : 3 + users + profile]:
                await ask(user)
            profiler.disable()
            text = io.StringIO()
            stats = pstats.Stats(profiler, stream=text)
            stats.sort_stats("cumulative").print_stats(40)
            stats.sort_stats("tottime").print_stats(25)
            print(text.getvalue(), file=sys.stderr)
    return out


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


async def _m2_recall(app: Any, ask: Any, users: list[int]) -> dict[str, Any]:
    """m2's candidate index against scoring every track: the same users asked again (now
    returning: their SVMs trained) with the index and without, one at a time; how many of the
    exact answer's 20 tracks the index's has, how many answers are identical (order and
    scores), and the latency of each."""
    settings = app.state.runtime.settings
    index_min = settings.candidate_index_min_tracks
    found, identical, ms_index, ms_exact = [], 0, [], []
    for user in users:
        started = time.perf_counter()
        with_index = await ask(user)
        ms_index.append((time.perf_counter() - started) * 1000)
        settings.candidate_index_min_tracks = 1 << 62
        try:
            started = time.perf_counter()
            exact = await ask(user)
            ms_exact.append((time.perf_counter() - started) * 1000)
        finally:
            settings.candidate_index_min_tracks = index_min
        fast = [(t["track_id"], t["score"]) for t in with_index["items"]]
        want = [(t["track_id"], t["score"]) for t in exact["items"]]
        identical += fast == want
        keep = {t for t, _ in want}
        found.append(len(keep & {t for t, _ in fast}) / max(1, len(keep)))
    return {
        "users": len(users),
        "index_min_tracks": index_min,
        "recall_at_20_mean": round(sum(found) / max(1, len(found)), 4),
        "recall_at_20_min": round(min(found, default=1.0), 4),
        "identical_answers": identical,
        "returning_one_at_a_time_ms": {
            "index_p50": _pct(ms_index, 50),
            "exact_p50": _pct(ms_exact, 50),
            "index_p99": _pct(ms_index, 99),
            "exact_p99": _pct(ms_exact, 99),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", choices=sorted(OFFSET))
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--profile", type=int, default=0)
    parser.add_argument("--recall", type=int, default=50, help="m2: users compared with exact")
    args = parser.parse_args()
    scale = Scale.from_env(quick=False)
    work = WORK / scale.key
    if not (work / f"train_{args.service}.json").is_file():
        sys.exit(f"no data set at {work}: run `python bench/run.py scale` with these sizes first")
    models = work / "models"
    for folder in ("M1/user_models", "M2/user_svm_models", "M3/user_models"):
        shutil.rmtree(models / folder, ignore_errors=True)  # every user a first visit
    os.environ |= {
        "DATABASE_URL": database_url(scale),
        "MODEL_ROOT": str(models),
        "LOG_LEVEL": "WARNING",
        "APP_API_KEY": "bench-app-" + uuid.uuid4().hex,
        "RATE_LIMIT_APP_PER_S": "0",
    }
    print(
        json.dumps(
            asyncio.run(_run(args.service, args.users, args.rate, args.profile, args.recall))
        )
    )


if __name__ == "__main__":
    main()
