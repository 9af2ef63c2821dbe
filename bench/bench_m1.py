"""Benchmark m1 (issue 4): recommend latency through the gateway at 16 concurrent clients.

Measured in one run against the bench stack (bench/context.py: full demo data in MariaDB, the
five services and Traefik as real processes):
- /api/m1/recommend through the gateway, 16 closed-loop clients, next to /healthz through the
  same gateway (the floor any route pays on this machine) and to recommend sent to m1 directly;
  every sample user is trained first, so the personal path is what is measured. Requests
  rotate over the sample users, so after the first round m1's exact ranked-list cache
  answers: that is the "warm" figure.
- the "cold" path: a second m1 process with that cache disabled (M1_RANKED_CACHE_SIZE=0) on
  the same DB and model volume, loaded directly, so every request computes its ranking;
- in-process CPU per request by stage (thread CPU time, not wall: the machine is shared).
Goal: recommend p99 <= 50 ms through the gateway at 16 concurrent clients.

`run(context) -> dict` for bench/run.py; `python bench/run.py m1 [--quick]` runs it alone
and writes bench/results/m1.json.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from bench.context import BenchContext, Call, read_db
from bench.credentials import AUTH
from tests.processes import ServiceProcess, free_port

CONCURRENCY = 16
GOAL_P99_MS = 50.0
LIMIT = 20


def _train_users(base: str, users: list[int]) -> dict[str, int]:
    models: dict[str, int] = {}
    with httpx.Client(verify=False, timeout=60, headers=AUTH) as client:
        for u in users:
            model = (
                client.post(base + "/api/m1/train", json={"user_id": u})
                .json()
                .get("model", "error")
            )
            models[model] = models.get(model, 0) + 1
    return models


def _cpu_per_stage(database_url: str, model_root: Path, users: list[int]) -> dict[str, Any]:
    """Thread CPU milliseconds per cold request for each stage, in this process (no HTTP)."""
    from threadpoolctl import threadpool_limits

    from musicspace_m1.catalog_index import build_catalog_index
    from musicspace_m1.hybrid import candidates, drivers, feature_matrix
    from musicspace_m1.profile import NO_AUDIO, build_profile
    from musicspace_m1.settings import Settings
    from musicspace_m1.store import ModelCache
    from musicspace_shared.catalog import load_tracks, load_user_tracks

    settings = Settings(database_url=database_url, model_root=model_root)

    async def read(session: Any) -> tuple[Any, Any]:
        return await load_tracks(session), await load_user_tracks(session)

    frame, owned = read_db(database_url, read)
    t0 = time.thread_time()
    index = build_catalog_index(frame)
    build_ms = (time.thread_time() - t0) * 1000
    cache = ModelCache(settings.model_dir("M1"))
    loaded = cache.global_model()
    if loaded is None:
        return {"error": "no m1 global model on the bench volume"}
    model = loaded[0]
    stages = {"profile": 0.0, "candidates": 0.0, "features": 0.0, "predict": 0.0, "drivers": 0.0}
    n = 0
    with threadpool_limits(limits=1):
        for u in users:
            if u not in owned:
                continue
            user_model = cache.user_model(u)
            personal_ok = user_model is not None and not user_model.fallback
            marks = [time.thread_time()]
            rows = frame.rows(owned[u])
            profile = build_profile(
                index,
                rows,
                global_audio=model.global_audio,
                min_tracks=model.min_tracks,
                own_audio=user_model.audio if personal_ok and user_model else NO_AUDIO,
            )
            marks.append(time.thread_time())
            cand, aff = candidates(index, profile, exclude=profile.rows, n=model.n_candidates)
            marks.append(time.thread_time())
            x = feature_matrix(
                index,
                profile,
                user_model.personal if personal_ok and user_model else None,
                cand,
                aff,
            )
            marks.append(time.thread_time())
            scores = model.classifier.predict_proba(x)[:, 1]
            marks.append(time.thread_time())
            drivers(x[scores.argsort()[::-1][:LIMIT]])
            marks.append(time.thread_time())
            for name, a, b in zip(stages, marks, marks[1:], strict=False):
                stages[name] += (b - a) * 1000
            n += 1
    per_stage = {k: round(v / max(n, 1), 2) for k, v in stages.items()}
    return {
        "users": n,
        "n_candidates": model.n_candidates,
        "catalog_tracks": len(frame),
        "index_build_ms": round(build_ms, 1),
        "cpu_ms_per_request": per_stage,
        "cpu_ms_total": round(sum(per_stage.values()), 2),
    }


def _cold_direct(context: BenchContext, users: list[int], seconds: float) -> dict[str, Any]:
    """recommend against a second m1 process with the ranked-list cache off (every request computes)."""
    stack = context.stack()
    env = stack.env | {"M1_RANKED_CACHE_SIZE": "0"}
    service = ServiceProcess(
        name="m1", port=free_port(), env=env, log_path=context.work / "logs" / "m1_cold.log"
    )
    service.start()
    try:
        service.wait_ready(timeout_s=300)
        calls = [
            Call(
                "recommend_cold_direct",
                "POST",
                service.url + "/api/m1/recommend",
                {"user_id": u, "limit": LIMIT},
            )
            for u in users
        ]
        return context.load(calls, concurrency=CONCURRENCY, seconds=seconds).summary()
    finally:
        service.stop()


def run(context: BenchContext) -> dict[str, Any]:
    stack = context.stack()
    if "m1" in stack.unavailable:
        return {"skipped": "m1 not ready", "reason": stack.unavailable["m1"]}
    seconds = 5 if context.quick else 30
    users = stack.sample_user_ids or [1]
    result: dict[str, Any] = {
        "concurrency": CONCURRENCY,
        "goal_p99_ms": GOAL_P99_MS,
        "users": len(users),
        "limit": LIMIT,
    }
    started = time.perf_counter()
    result["trained_users"] = _train_users(stack.gateway_url, users)
    result["train_ms_per_user_wall"] = round((time.perf_counter() - started) * 1000 / len(users), 1)

    result |= context.recommend_latency(
        "m1",
        users,
        limit=LIMIT,
        seconds=seconds,
        concurrency=CONCURRENCY,
        goal_p99_ms=GOAL_P99_MS,
    )
    result["recommend_cold_direct"] = _cold_direct(context, users, seconds)
    result["in_process"] = _cpu_per_stage(stack.database_url, stack.model_root, users)
    result["note"] = (
        "shared 2-core machine; the load generator, Traefik and all five services share it. "
        "recommend_gateway/direct are served mostly from m1's exact ranked-list cache (users repeat); "
        "recommend_cold_direct computes every request (cache off)."
    )
    return result
