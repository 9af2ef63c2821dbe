"""Serving while indexes refresh (issue 15): latency through the gateway, idle vs. during.

Open loop: requests arrive at a steady rate (RATE_PER_SERVICE per second per route), through
Traefik over https, each latency counted from when the request was due (a stalled service
shows in full). Each phase asks every distinct user once (m1/m2/m3 recommend) or a query never
asked before (llm search), so no answer comes from a cache in either phase. In one run:
1. m1, m2, m3 recommend, mixed: idle, then while their catalog indexes refresh back to back
   (one track's updated_at moves every 0.5 s, so every catalog check finds a new catalog and
   rebuilds the whole index at each <SERVICE>_CATALOG_CHECK_S round; bench/context.py sets
   5 s). A warm-up pass first stores the
   per-user m2 models, and a catalog change before the idle phase empties the answer caches.
2. llm search: idle, then while syncs run back to back: a fresh import is simulated (every
   track's updated_at set to now, so the syncs meet all 28,356 tracks inside their look-back
   window) and POST /api/llm/index/sync is sent every 0.25 s through the gateway (admin key).
Idle and busy segments alternate ROUNDS times (the shared machine's background load drifts),
with a pause after each busy one until the rebuilds it caused are over.
Goal: p99 during <= 2 x the idle p99 of the same run, and 0 non-2xx.

`run(context) -> dict` for bench/run.py; `python bench/run.py sync [--quick]` runs it alone
and writes bench/results/sync.json.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from bench import credentials
from bench.bench_llm import unique_queries
from bench.context import BenchContext, BenchStack, Call, LoadResult

RATE_PER_SERVICE = 6.0  # requests per second per route
TOUCH_EVERY_S = 0.5
SYNC_REQUEST_EVERY_S = 0.25
GOAL_RATIO = 2.0
ROUNDS = 4  # idle and busy segments alternate this many times
RECOMMEND = ("m1", "m2", "m3")


def _execute(url: str, sql: str, **params: Any) -> None:
    import asyncio

    import sqlalchemy as sa

    from musicspace_shared.db.engine import make_engine

    async def run() -> None:
        engine = make_engine(url=url)
        try:
            async with engine.begin() as conn:
                await conn.execute(sa.text(sql), params)
        finally:
            await engine.dispose()

    asyncio.run(run())


def _touch(url: str, track_id: str | None = None) -> None:
    """Move updated_at to now: of one track (a catalog change) or of all (a fresh import)."""
    where = " WHERE track_id = :t" if track_id else ""
    _execute(url, f"UPDATE track SET updated_at = CURRENT_TIMESTAMP(6){where}", t=track_id)


def events_count(service_url: str, event: str) -> float:
    text = httpx.get(service_url + "/metrics", timeout=10).text
    pattern = rf'^musicspace_events_total{{[^}}]*event="{event}"[^}}]*}} ([0-9.e+]+)$'
    return sum(float(m) for m in re.findall(pattern, text, flags=re.M))


def wait_for_background_training(service_url: str, timeout_s: float = 1800.0) -> float:
    """Until the service's per-user models asked for so far are trained (m2 trains them behind
    the requests: musicspace_shared.background); the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        queued = events_count(service_url, "user_svm_training_queued")
        if events_count(service_url, "user_svm_training_done") >= queued:
            break
        time.sleep(0.5)
    return round(time.monotonic() - started, 1)


class Background:
    """A thread repeating `step` every `every_s` seconds until stopped."""

    def __init__(self, step: Callable[[], None], every_s: float) -> None:
        self.step, self.every_s = step, every_s
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as exc:  # noqa: BLE001 - recorded in the result
                self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            self._stop.wait(self.every_s)

    def __enter__(self) -> Background:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def _verdict(idle: dict[str, Any], during: dict[str, Any]) -> dict[str, Any]:
    non_2xx = sum(n for status, n in during["statuses"].items() if not status.startswith("2"))
    idle_p99, busy_p99 = idle["p99_ms"], during["p99_ms"]
    ratio = round(busy_p99 / idle_p99, 2) if idle_p99 and busy_p99 else None
    return {
        "idle_p99_ms": idle_p99,
        "during_p99_ms": busy_p99,
        "ratio": ratio,
        "non_2xx_during": non_2xx,
        "non_2xx_idle": sum(
            n for status, n in idle["statuses"].items() if not status.startswith("2")
        ),
        "met": ratio is not None and ratio <= GOAL_RATIO and non_2xx == 0,
    }


def _recommend_calls(stack: BenchStack, users: list[int], label_suffix: str) -> list[Call]:
    """Each user once per service, interleaved m1, m2, m3."""
    return [
        Call(
            f"{service}{label_suffix}",
            "POST",
            f"{stack.gateway_url}/api/{service}/recommend",
            {"user_id": u, "limit": 20},
        )
        for u in users
        for service in RECOMMEND
    ]


def _recommend_phases(context: BenchContext, stack: BenchStack, seconds: float) -> dict[str, Any]:
    per_phase = int(RATE_PER_SERVICE * seconds)
    users = context._sample_users(stack.database_url, count=10_000)
    rng = random.Random(15)
    idle_users = rng.sample(users, min(per_phase, len(users)))
    busy_users = rng.sample(users, min(per_phase, len(users)))
    # Warm-up outside the figures: every user's per-user m2 model is trained and stored.
    everyone = sorted(set(idle_users) | set(busy_users))
    warm = _recommend_calls(stack, everyone, "_warm")
    context.load(warm, concurrency=4, total=len(warm), warmup=0)
    track_ids = _track_ids(stack.database_url, 200)
    # A catalog change now: the answer caches of the warm-up are for the old catalog.
    _touch(stack.database_url, track_ids[0])
    _quiesce(stack, probe_user=users[0])
    rate = RATE_PER_SERVICE * len(RECOMMEND)
    before = {s: events_count(stack.service_urls[s], "catalog_rebuilds") for s in RECOMMEND}
    turn = iter(range(10**9))

    def refreshing() -> Background:
        return Background(
            lambda: _touch(stack.database_url, track_ids[next(turn) % len(track_ids)]),
            TOUCH_EVERY_S,
        )

    idle, during, errors = _alternate(
        context,
        idle_calls=_recommend_calls(stack, idle_users, ""),
        busy_calls=_recommend_calls(stack, busy_users, ""),
        rate=rate,
        seconds=seconds,
        busy=refreshing,
        settle=lambda: _quiesce(stack, probe_user=users[0]),
    )
    rebuilds = {
        s: events_count(stack.service_urls[s], "catalog_rebuilds") - before[s] for s in RECOMMEND
    }
    idle_s, during_s = idle.summary(), during.summary()
    return {
        "users_per_phase": len(idle_users),
        "rate_per_s": rate,
        "idle": idle_s,
        "during_refresh": during_s,
        "catalog_rebuilds_during": rebuilds,
        "touch_errors": errors[:5],
        "goal": {s: _verdict(idle_s["by_label"][s], during_s["by_label"][s]) for s in RECOMMEND},
    }


def _alternate(
    context: BenchContext,
    *,
    idle_calls: list[Call],
    busy_calls: list[Call],
    rate: float,
    seconds: float,
    busy: Callable[[], Background],
    settle: Callable[[], None],
) -> tuple[LoadResult, LoadResult, list[str]]:
    """ROUNDS rounds of (idle, busy) segments of seconds/ROUNDS each, pooled per phase: the
    machine is shared, and its background load drifts; alternating spreads the drift over
    both phases instead of charging it to one."""
    segment = seconds / ROUNDS
    idle, during, errors = LoadResult(0.0, []), LoadResult(0.0, []), []
    for r in range(ROUNDS):
        part = len(idle_calls) // ROUNDS
        quiet = context.open_load(idle_calls[r * part : (r + 1) * part], rate=rate, seconds=segment)
        with busy() as work:
            loaded = context.open_load(
                busy_calls[r * part : (r + 1) * part], rate=rate, seconds=segment
            )
        errors += work.errors
        settle()
        for pooled, result in ((idle, quiet), (during, loaded)):
            pooled.seconds += result.seconds
            pooled.samples += result.samples
    return idle, during, errors


def _quiesce(stack: BenchStack, *, probe_user: int, quiet_s: float = 7.0) -> None:
    """Until m1, m2 and m3 have rebuilt for the last change and then stay quiet for quiet_s
    (longer than their 5 s check interval; m2 and m3 check the catalog on requests: each gets
    one every half second meanwhile)."""
    last, since = None, time.monotonic()
    deadline = since + 90
    while time.monotonic() < deadline:
        for service in ("m2", "m3"):
            httpx.post(
                f"{stack.service_urls[service]}/api/{service}/recommend",
                json={"user_id": probe_user, "limit": 5},
                headers=credentials.AUTH,
                timeout=30,
            )
        now = {s: events_count(stack.service_urls[s], "catalog_rebuilds") for s in RECOMMEND}
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.5)


def _track_ids(url: str, count: int) -> list[str]:
    import asyncio

    import sqlalchemy as sa

    from musicspace_shared.db.engine import make_engine

    async def query() -> list[str]:
        engine = make_engine(url=url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    sa.text("SELECT track_id FROM track ORDER BY track_id LIMIT :n"), {"n": count}
                )
                return [r[0] for r in rows]
        finally:
            await engine.dispose()

    return asyncio.run(query())


def _search_phases(context: BenchContext, stack: BenchStack, seconds: float) -> dict[str, Any]:
    per_phase = int(RATE_PER_SERVICE * seconds)
    queries = unique_queries(2 * per_phase, seed=15)
    url = stack.gateway_url + "/api/llm/search"

    def calls(part: list[str]) -> list[Call]:
        return [Call("search", "POST", url, {"query": q, "limit": 10}) for q in part]

    admin = {"Authorization": f"Bearer {stack.admin_key}"}
    status_url = stack.service_urls["llm"] + "/api/llm/index/status"
    syncs: dict[int, dict[str, Any]] = {}
    answers: dict[str, int] = {}
    client = httpx.Client(verify=False, timeout=10)

    def ask() -> None:
        response = client.post(stack.gateway_url + "/api/llm/index/sync", headers=admin)
        key = f"{response.status_code} {response.json().get('accepted', '')}".strip()
        answers[key] = answers.get(key, 0) + 1
        last = (
            httpx.get(status_url, headers=credentials.AUTH, timeout=10).json().get("last_sync")
            or {}
        )
        if "run" in last:
            syncs[last["run"]] = last

    def settle() -> None:
        time.sleep(3)  # the queued sync (1 s gap) ends before the next idle segment
        ask_status = (
            httpx.get(status_url, headers=credentials.AUTH, timeout=10).json().get("last_sync")
            or {}
        )
        if "run" in ask_status:
            syncs[ask_status["run"]] = ask_status

    imported: list[bool] = []

    def syncing() -> Background:
        if not imported:  # a fresh import: every track inside the syncs' look-back window
            _touch(stack.database_url)
            imported.append(True)
        return Background(ask, SYNC_REQUEST_EVERY_S)

    idle, during, errors = _alternate(
        context,
        idle_calls=calls(queries[:per_phase]),
        busy_calls=calls(queries[per_phase:]),
        rate=RATE_PER_SERVICE,
        seconds=seconds,
        busy=syncing,
        settle=settle,
    )
    client.close()
    idle_s, during_s = idle.summary(), during.summary()
    seen = sorted(syncs.values(), key=lambda s: s["run"])
    return {
        "rate_per_s": RATE_PER_SERVICE,
        "idle": idle_s,
        "during_sync": during_s,
        "sync_requests": answers,
        "sync_request_errors": errors[:5],
        "syncs_observed": len(seen),
        "sync_seconds": [s.get("seconds") for s in seen],
        "sync_rows": [
            {k: s.get(k) for k in ("run", "scanned", "seen", "changed", "embedded")} for s in seen
        ],
        "goal": _verdict(idle_s, during_s),
    }


def run(context: BenchContext) -> dict[str, Any]:
    stack = context.stack()
    missing = [s for s in (*RECOMMEND, "llm") if s in stack.unavailable]
    if missing:
        return {"skipped": f"not ready: {', '.join(missing)}"}
    seconds = 10 if context.quick else 40
    result: dict[str, Any] = {
        "kind": "open loop (steady arrival rate), latency from each request's due time, "
        "https through Traefik; distinct users / queries in every phase",
        "goal": f"p99 during <= {GOAL_RATIO} x idle p99 of the same run, 0 non-2xx",
    }
    result["recommend"] = _recommend_phases(context, stack, seconds)
    result["search"] = _search_phases(context, stack, seconds)
    result["met"] = result["search"]["goal"]["met"] and all(
        g["met"] for g in result["recommend"]["goal"].values()
    )
    result["rss_mb"] = stack.rss_mb()
    return result
