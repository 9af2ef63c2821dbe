"""Benchmark: a sign-up with a 2,000-track library over HTTP, through the gateway (issue 17).

For each of several distinct new users, one after the other (a sign-up is one user's wait),
against the bench stack (bench/context.py: full demo data in MariaDB, the services and Traefik
as real processes):
- `PUT /api/users/{id}`;
- `PUT /api/users/{id}/library` (mode replace) with 2,000 tracks: 90% catalog tracks, 10%
  tracks the catalog does not have yet (new ids, a catalog row's title and artist), created
  with blank features, as imported libraries are;
- `POST /api/init-models`, which answers when it is done: the unknown tracks enriched through
  m2, then m1, the m2 user SVM and m3 trained for the user;
- the sign-up time is the sum (p50, p99 and max over the users; with few users p99 is close
  to the max), each phase separately, and the init-models steps' statuses;
- the same library PUT again (an idempotent repeat: nothing written), and the erasure
  (`DELETE /api/users/{id}`) that removes the user afterwards, so reruns leave the bench
  database as they found it.

`run(context) -> dict` for bench/run.py; `python bench/run.py signup [--quick]` runs it alone
and writes bench/results/signup.json.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from collections.abc import Sequence
from typing import Any

import httpx

from bench.context import BenchContext, read_db
from bench.credentials import AUTH

LIBRARY_SIZE = 2000
UNKNOWN_SHARE = 0.10
USERS = 8
QUICK_USERS = 3
PLAYLIST_SIZE = 50  # tracks per imported playlist
TIMEOUT_S = 900.0


def library_for(
    catalog: Sequence[tuple[str, str | None, str | None]],
    *,
    user_id: int,
    size: int = LIBRARY_SIZE,
    unknown_share: float = UNKNOWN_SHARE,
) -> list[dict[str, Any]]:
    """A user's library: `size` distinct tracks from `catalog` ((track_id, title, artist)
    rows), a share of them under new ids (unknown to the catalog, with that row's title and
    artist), grouped into playlists. Deterministic for a user id."""
    rng = random.Random(user_id)
    picked = rng.sample(list(catalog), size)
    unknown = round(size * unknown_share)
    items = []
    for i, (track_id, title, artist) in enumerate(picked):
        playlist = f"pl-{user_id}-{i // PLAYLIST_SIZE}"
        item: dict[str, Any] = {"track_id": track_id, "playlist_id": playlist}
        if i < unknown:
            item = {
                "track_id": f"su{uuid.UUID(int=rng.getrandbits(128)).hex[:20]}",
                "playlist_id": playlist,
                "title": title,
                "artist": artist,
            }
        items.append(item)
    rng.shuffle(items)
    return items


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50, p99 (nearest rank) and max of `values`, rounded to 0.1."""
    ordered = sorted(values)
    if not ordered:
        return {"p50": None, "p99": None, "max": None}

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 1)

    return {"p50": rank(50), "p99": rank(99), "max": round(ordered[-1], 1)}


def _catalog(database_url: str) -> list[tuple[str, str | None, str | None]]:
    import sqlalchemy as sa

    query = sa.text(
        "SELECT track_id, title, artist FROM track WHERE features_source = 'measured' "
        "ORDER BY track_id"
    )

    async def read(session: Any) -> list[tuple[str, str | None, str | None]]:
        return [tuple(row) for row in await session.execute(query)]  # type: ignore[misc]

    return read_db(database_url, read)


def _timed(client: httpx.Client, method: str, path: str, body: Any = None) -> tuple[float, Any]:
    started = time.perf_counter()
    response = client.request(method, path, json=body)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code >= 400:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
    return elapsed, response.json()


def _sign_up(client: httpx.Client, user_id: int, library: list[dict[str, Any]]) -> dict[str, Any]:
    put_user, _ = _timed(client, "PUT", f"/api/users/{user_id}", {"name": f"bench {user_id}"})
    body = {"mode": "replace", "tracks": library}
    put_library, written = _timed(client, "PUT", f"/api/users/{user_id}/library", body)
    init, answer = _timed(client, "POST", "/api/init-models", {"user_id": user_id})
    repeat, again = _timed(client, "PUT", f"/api/users/{user_id}/library", body)
    erase, erased = _timed(client, "DELETE", f"/api/users/{user_id}")
    return {
        "user_id": user_id,
        "ms": {
            "put_user": round(put_user, 1),
            "put_library": round(put_library, 1),
            "init_models": round(init, 1),
            "signup_total": round(put_user + put_library + init, 1),
            "put_library_repeat": round(repeat, 1),
            "erase": round(erase, 1),
        },
        "library": {k: written[k] for k in ("inserted", "tracks_created", "library_size")},
        "repeat_unchanged": again["unchanged"],
        "steps": {step["name"]: step["status"] for step in answer["steps"]},
        "enriched": next(
            (s["result"] or {}).get("enriched") for s in answer["steps"] if s["name"] == "enrich"
        ),
        "erased_rows": sum(erased["rows"].values()),
    }


def run(context: BenchContext) -> dict[str, Any]:
    stack = context.stack()
    down = sorted(set(stack.unavailable) & {"enrichment", "m1", "m2", "m3"})
    if down:
        return {"skipped": f"{', '.join(down)} not ready", "reasons": stack.unavailable}
    catalog = _catalog(stack.database_url)
    count = QUICK_USERS if context.quick else USERS
    # New ids every run (far above the demo users): each sign-up is a first one.
    base = random.SystemRandom().randint(10**11, 9 * 10**11)
    runs = []
    with httpx.Client(
        base_url=stack.gateway_url, verify=False, timeout=TIMEOUT_S, headers=AUTH
    ) as client:
        for n in range(count):
            user_id = base + n
            runs.append(_sign_up(client, user_id, library_for(catalog, user_id=user_id)))
    phases = runs[0]["ms"].keys() if runs else []
    return {
        "users": count,
        "library_size": LIBRARY_SIZE,
        "unknown_share": UNKNOWN_SHARE,
        "signup_ms": percentiles([r["ms"]["signup_total"] for r in runs]),
        "by_phase_ms": {p: percentiles([r["ms"][p] for r in runs]) for p in phases},
        "all_steps_ok": all(
            all(
                status in ("ok", "skipped")
                for name, status in r["steps"].items()
                if name != "llm_sync"
            )
            for r in runs
        ),
        "runs": runs,
        "note": "sequential sign-ups through the gateway on the shared 2-core machine; "
        f"p99 over {count} users is close to the max",
    }
