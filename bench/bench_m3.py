"""Benchmark m3 (issue 6): recommend latency through the gateway at 16 concurrent clients.

Measured in one run, against the bench stack (bench/context.py: full demo data in MariaDB,
the five services and Traefik as real processes):
- /api/m3/recommend through the gateway, 16 closed-loop clients, next to m3's /healthz through
  the same gateway (the floor any route pays on this machine) and to recommend sent to m3
  directly (the gateway's share);
- correctness under load: the answers of the concurrent phase equal the serial answers;
- /api/m3/events: batches of 100 events (new ids), events per second;
- in-process CPU per request by stage (thread CPU time, not wall: the machine is shared),
  for the global model and the configured candidate count.
Goal: recommend p99 <= 50 ms through the gateway at 16 concurrent clients.

`run(context) -> dict` for bench/run.py; `python bench/run.py m3 [--quick]` runs it alone
and writes bench/results/m3.json.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.context import BenchContext, read_db
from bench.credentials import AUTH

CONCURRENCY = 16
GOAL_P99_MS = 50.0


def _serial_answers(url: str, users: list[int]) -> dict[int, list[str]]:
    with httpx.Client(verify=False, timeout=60, headers=AUTH) as client:
        return {
            u: [
                i["track_id"]
                for i in client.post(url, json={"user_id": u, "limit": 20}).json()["items"]
            ]
            for u in users
        }


async def _concurrent_answers(
    url: str, users: list[int], rounds: int = 4
) -> dict[int, list[list[str]]]:
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(verify=False, timeout=60, limits=limits, headers=AUTH) as client:
        responses = await asyncio.gather(
            *(client.post(url, json={"user_id": u, "limit": 20}) for u in users * rounds)
        )
    out: dict[int, list[list[str]]] = {}
    for u, r in zip(users * rounds, responses, strict=True):
        out.setdefault(u, []).append([i["track_id"] for i in r.json()["items"]])
    return out


def _cpu_per_stage(database_url: str, model_root: Path, users: list[int]) -> dict[str, Any]:
    """Thread CPU milliseconds per request for each stage, in this process (no HTTP)."""
    import numpy as np

    from musicspace_m3 import ranker, repository
    from musicspace_m3.features import candidates, feature_matrix, user_stats
    from musicspace_m3.models import ModelRegistry
    from musicspace_m3.settings import Settings
    from musicspace_m3.state import build_snapshot, profile_for
    from musicspace_shared.catalog import load_tracks

    settings = Settings(database_url=database_url, model_root=model_root)

    async def read(session: Any) -> tuple[Any, Any]:
        return await load_tracks(session), await repository.load_all_users(session)

    frame, all_users = read_db(database_url, read)
    t0 = time.thread_time()
    snapshot = build_snapshot(frame, all_users, catalog_fp="bench", activity_fp="bench")
    build_ms = (time.thread_time() - t0) * 1000
    loaded = ModelRegistry(settings.model_dir("M3"), settings.global_model_name).refresh_global(
        force=True
    )
    if loaded is None:
        return {"error": "no global model on the bench volume"}
    stages = {"user_stats": 0.0, "candidates": 0.0, "features": 0.0, "predict": 0.0, "explain": 0.0}
    profiles = [profile_for(snapshot.index, u, all_users[u]) for u in users if u in all_users]
    for profile in profiles:
        marks = [time.thread_time()]
        stats = user_stats(snapshot.index, snapshot.collab, profile)
        marks.append(time.thread_time())
        cands = candidates(snapshot.index, stats, profile, limit=settings.n_candidates)
        marks.append(time.thread_time())
        x = feature_matrix(snapshot.index, stats, profile, cands)
        marks.append(time.thread_time())
        scores = ranker.predict(loaded.model, x)
        marks.append(time.thread_time())
        top = np.argsort(-scores)[:20]
        ranker.contributions(loaded.model, x[top], np.median(x, axis=0))
        marks.append(time.thread_time())
        for name, a, b in zip(stages, marks, marks[1:], strict=False):
            stages[name] += (b - a) * 1000
    n = max(len(profiles), 1)
    per_stage = {k: round(v / n, 2) for k, v in stages.items()}
    return {
        "users": len(profiles),
        "n_candidates": settings.n_candidates,
        "trees": loaded.model.tree_count_,
        "snapshot_build_ms": round(build_ms, 1),
        "cpu_ms_per_request": per_stage,
        "cpu_ms_total": round(sum(per_stage.values()), 2),
    }


def run(context: BenchContext) -> dict[str, Any]:
    stack = context.stack()
    if "m3" in stack.unavailable:
        return {"skipped": "m3 not ready", "reason": stack.unavailable["m3"]}
    seconds = 5 if context.quick else 30
    users = stack.sample_user_ids or [1]
    gateway = stack.gateway_url + "/api/m3/recommend"
    result: dict[str, Any] = {
        "concurrency": CONCURRENCY,
        "goal_p99_ms": GOAL_P99_MS,
        "users": len(users),
    }

    result |= context.recommend_latency(
        "m3", users, limit=20, seconds=seconds, concurrency=CONCURRENCY, goal_p99_ms=GOAL_P99_MS
    )

    sample = users[:16]
    serial = _serial_answers(gateway, sample)
    concurrent = asyncio.run(_concurrent_answers(gateway, sample))
    result["concurrent_equals_serial"] = all(
        all(a == serial[u] for a in answers) for u, answers in concurrent.items()
    )

    track_ids = _some_tracks(stack.database_url)
    batches = []
    for b in range(5 if context.quick else 20):
        batches.append(
            [
                {
                    "event_id": f"bench-{uuid.uuid4().hex}",
                    "user_id": users[(b + i) % len(users)],
                    "track_id": track_ids[(b * 100 + i) % len(track_ids)],
                    "kind": ("play", "skip", "like")[i % 3],
                }
                for i in range(100)
            ]
        )
    started = time.perf_counter()
    with httpx.Client(verify=False, timeout=60, headers=AUTH) as client:
        statuses = [
            client.post(stack.gateway_url + "/api/m3/events", json={"events": batch}).status_code
            for batch in batches
        ]
    elapsed = time.perf_counter() - started
    result["events"] = {
        "batches": len(batches),
        "batch_size": 100,
        "statuses": sorted(set(statuses)),
        "events_per_s": round(len(batches) * 100 / elapsed, 1),
        "ms_per_batch": round(elapsed * 1000 / len(batches), 1),
    }
    result["in_process"] = _cpu_per_stage(stack.database_url, stack.model_root, users)
    result["note"] = (
        "shared 2-core machine; the load generator, Traefik and all five services share it"
    )
    return result


def _some_tracks(database_url: str, n: int = 2000) -> list[str]:
    import sqlalchemy as sa

    query = sa.text("SELECT track_id FROM track ORDER BY track_id LIMIT :n")

    async def read(session: Any) -> list[str]:
        return [r[0] for r in await session.execute(query, {"n": n})]

    return read_db(database_url, read)
