"""Gateway cost and mixed load (issue 8): every recommend and search route through Traefik,
p50/p99/req/s per route next to /healthz through the same gateway in the same run, then a
soak (BENCH_SOAK_S seconds, default 300; 20 with --quick) with errors and service memory.

Routes whose service is not ready are reported under "skipped" rather than measured.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from bench.context import BenchContext, Call
from bench.credentials import AUTH

CONCURRENCY = 16


def _route_calls(stack: Any) -> tuple[list[Call], dict[str, str]]:
    base, users = stack.gateway_url, stack.sample_user_ids or [1]
    calls: list[Call] = []
    skipped: dict[str, str] = {}
    queries = [
        "energetic dance pop for a party",
        "calm acoustic evening",
        "새벽 드라이브에 어울리는 신스팝",
        "dark techno",
    ]
    for i, user in enumerate(users[:20]):
        for service, path, body in (
            ("m1", "/api/m1/recommend", {"user_id": user, "limit": 20}),
            ("m2", "/api/m2/recommend", {"user_id": user, "limit": 20}),
            ("m3", "/api/m3/recommend", {"user_id": user, "limit": 20}),
            ("llm", "/api/llm/search", {"query": queries[i % len(queries)], "limit": 20}),
            (
                "llm",
                "/api/llm/recommend",
                {"user_id": user, "query": queries[i % len(queries)], "limit": 20},
            ),
        ):
            if service in stack.unavailable:
                skipped[path] = f"{service} not ready"
                continue
            calls.append(Call(path, "POST", base + path, body))
    return calls, skipped


def run(context: BenchContext) -> dict[str, Any]:
    stack = context.stack()
    seconds = 5 if context.quick else 30
    result: dict[str, Any] = {"concurrency": CONCURRENCY, "unavailable": sorted(stack.unavailable)}

    # 1. The gateway's own cost: m1's /healthz direct and through Traefik, same run.
    direct = context.load(
        [Call("healthz_direct", "GET", stack.service_urls["m1"] + "/healthz")],
        concurrency=CONCURRENCY,
        seconds=seconds,
    )
    gated = context.load(
        [Call("healthz_gateway", "GET", stack.health_url)], concurrency=CONCURRENCY, seconds=seconds
    )
    result["healthz_direct"] = direct.summary()
    result["healthz_gateway"] = gated.summary()

    # 2. Mixed load: every recommend/search route interleaved, /healthz through the gateway among them.
    calls, skipped = _route_calls(stack)
    result["skipped"] = skipped
    for call in calls[:5]:  # a first call per route loads per-user models outside the timing
        httpx.request(
            call.method, call.url, json=call.json, verify=False, timeout=120, headers=AUTH
        )
    mixed = context.load(
        [*calls, Call("healthz_gateway", "GET", stack.health_url)],
        concurrency=CONCURRENCY,
        seconds=seconds * 2,
    )
    result["mixed"] = mixed.summary()

    # 3. Soak: the same mix for BENCH_SOAK_S seconds; memory sampled every 10 s.
    soak_s = float(os.environ.get("BENCH_SOAK_S", 20 if context.quick else 300))
    memory: list[dict[str, Any]] = [{"t": 0, **stack.rss_mb()}]

    def sample(elapsed: float) -> None:
        if elapsed - memory[-1]["t"] >= 10:
            memory.append({"t": round(elapsed), **stack.rss_mb()})

    soak = context.load(
        [*calls, Call("healthz_gateway", "GET", stack.health_url)],
        concurrency=CONCURRENCY,
        seconds=soak_s,
        on_tick=sample,
    )
    memory.append({"t": round(soak.seconds), **stack.rss_mb()})
    result["soak"] = {
        **{k: v for k, v in soak.summary().items() if k != "by_label"},
        "memory_mb": memory,
        "memory_growth_mb": {
            name: round(
                memory[-1].get(name, 0) - memory[1 if len(memory) > 2 else 0].get(name, 0), 1
            )
            for name in stack.pids
        },
    }
    return result
