"""Cold answers at a steady arrival rate (issue 18, parts 2 and 3): what a new user meets.

For m1, m2 and m3 in turn, through Traefik over https, open loop (bench/loadgen.py: requests
arrive at a fixed rate and each latency counts from when it was due, so a stall is not hidden
by senders that wait for it): every user of the catalog asked once, right after a catalog
change has emptied the service's answer cache. So no answer can come from a cache (each
(service, user) is asked once per catalog version), and m3's own hit counter, read before and
after, confirms it. /_bench/healthz is sent through the same gateway at the same rate in the
same run: the floor any request pays on this machine. Each service is measured at RATES
(requests per second to that service alone). Per-user m2 models are trained by a warm-up
first (behind its requests: the run waits until they are): they are models, not answers, and
a returning user has one.

Goal: recommend p99 <= 50 ms for m1, m2 and m3 at a rate the stack sustains.

`run(context) -> dict` for bench/run.py; `python bench/run.py cold [--quick]` runs it alone
and writes bench/results/cold.json.
"""

from __future__ import annotations

from typing import Any

from bench.bench_sync import (
    _quiesce,
    _recommend_calls,
    _touch,
    _track_ids,
    events_count,
    wait_for_background_training,
)
from bench.context import BenchContext, BenchStack, Call

RATES = (20.0, 50.0)  # requests per second to one service
GOAL_P99_MS = 50.0
SERVICES = ("m1", "m2", "m3")


def _cold_phase(
    context: BenchContext,
    stack: BenchStack,
    service: str,
    users: list[int],
    rate: float,
    *,
    probe_user: int,
) -> dict[str, Any]:
    """Empty the answer caches (a catalog change), then every user once at `rate` (the
    probe user, whom the wait for the rebuilds asks, is not among them)."""
    _touch(stack.database_url, _track_ids(stack.database_url, 1)[0])
    _quiesce(stack, probe_user=probe_user)
    url = f"{stack.gateway_url}/api/{service}/recommend"
    calls: list[Call] = []
    for user in users:
        calls.append(Call(service, "POST", url, {"user_id": user, "limit": 20}))
        calls.append(Call("healthz", "GET", stack.health_url))
    hits_before = events_count(stack.service_urls["m3"], "recommendation_cache_hits")
    load = context.open_load(calls, rate=2 * rate, seconds=len(users) / rate)
    hits = events_count(stack.service_urls["m3"], "recommendation_cache_hits") - hits_before
    summary = load.summary()
    row = summary["by_label"].get(service, {})
    floor = summary["by_label"].get("healthz", {})
    p99 = row.get("p99_ms")
    return {
        "rate_per_s": rate,
        "requests": row.get("requests"),
        "p50_ms": row.get("p50_ms"),
        "p99_ms": p99,
        "max_ms": row.get("max_ms"),
        "statuses": row.get("statuses"),
        "healthz_p99_ms": floor.get("p99_ms"),
        "m3_cache_hits": hits if service == "m3" else None,
        "met": p99 is not None and p99 <= GOAL_P99_MS and row.get("errors") == 0,
    }


def run(context: BenchContext) -> dict[str, Any]:
    stack = context.stack()
    missing = [s for s in SERVICES if s in stack.unavailable]
    if missing:
        return {"skipped": f"{', '.join(missing)} not ready"}
    users = context._sample_users(stack.database_url, count=10_000)
    if context.quick:
        users = users[:60]
    warm = _recommend_calls(stack, users, "_warm")
    context.load(warm, concurrency=4, total=len(warm), warmup=0)
    wait_for_background_training(stack.service_urls["m2"])
    rates = RATES[:1] if context.quick else RATES
    probe, measured = users[0], users[1:]
    phases = {
        service: {
            f"{rate:g}/s": _cold_phase(context, stack, service, measured, rate, probe_user=probe)
            for rate in rates
        }
        for service in SERVICES
    }
    return {
        "users": len(measured),
        "goal_p99_ms": GOAL_P99_MS,
        "phases": phases,
        "goal_met": {
            service: all(p["met"] for p in by_rate.values()) for service, by_rate in phases.items()
        },
        "note": (
            "open loop through the gateway, each user once per catalog version (no answer-cache "
            "hit possible); shared 2-core machine: the load generator, Traefik and all five "
            "services share it"
        ),
    }
