"""`musicspace report online`: click-through and play-through per source, route and A/B arm.

Reads the events (interaction_event) that name a recommendation (their recommendation_id,
and the source and arm it names) and occurred in [since, until). Each kind counts once per
(recommendation, track): an impression means "this answer showed this track", a click "and it
was tapped", a play "and it was played" (replays and resent events do not count again).
click_through = clicks / impressions and play_through = plays / impressions (None without
impressions). Route: `/api/recommend` for an answer given to a user in an A/B arm, the
model's own routes (`/api/m3`, ...) for an id with arm "none" (a model route called directly).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from musicspace_shared.db.tables import InteractionEvent
from musicspace_shared.recommendation_ids import NO_ARM

KINDS = ("impression", "click", "play", "like", "skip", "dislike")
_DURATION = re.compile(r"^([1-9][0-9]{0,5})([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
Row = tuple[str, str, str, int]  # source, arm, kind, count


def parse_time(value: str, *, now: datetime) -> datetime:
    """'7d', '24h', '30m' (that long before now) or an ISO time (UTC when it has no zone)."""
    match = _DURATION.match(value.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"{value!r}: give a duration (30m, 24h, 7d) or an ISO time (2026-12-01T00:00)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def route_of(source: str, arm: str) -> str:
    return "/api/recommend" if arm != NO_ARM else f"/api/{source}"


async def counts(engine: AsyncEngine, *, since: datetime, until: datetime) -> list[Row]:
    """Distinct (recommendation, track) pairs per source, arm and kind in the window."""
    e = InteractionEvent
    pairs = (
        sa.select(col(e.source), col(e.arm), col(e.kind), col(e.recommendation_id), col(e.track_id))
        .where(
            col(e.recommendation_id).is_not(None),
            col(e.occurred_at) >= since,
            col(e.occurred_at) < until,
        )
        .distinct()
        .subquery()
    )
    query = sa.select(pairs.c.source, pairs.c.arm, pairs.c.kind, sa.func.count()).group_by(
        pairs.c.source, pairs.c.arm, pairs.c.kind
    )
    async with engine.connect() as conn:
        return [(r[0], r[1], r[2], int(r[3])) for r in await conn.execute(query)]


def _rates(totals: dict[str, int]) -> dict[str, Any]:
    shown = totals.get("impression", 0)
    row: dict[str, Any] = {f"{kind}s": totals.get(kind, 0) for kind in KINDS}
    row["click_through"] = round(totals.get("click", 0) / shown, 4) if shown else None
    row["play_through"] = round(totals.get("play", 0) / shown, 4) if shown else None
    return row


def _group(rows: Iterable[Row], key: Any) -> dict[str, dict[str, Any]]:
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for source, arm, kind, n in rows:
        totals[key(source, arm)][kind] += n
    return {name: _rates(kinds) for name, kinds in sorted(totals.items())}


def summarise(rows: list[Row], *, since: datetime, until: datetime) -> dict[str, Any]:
    return {
        "window": {"since": since.isoformat(), "until": until.isoformat()},
        "by_source": _group(rows, lambda source, arm: source),
        "by_route": _group(rows, route_of),
        "by_arm": _group(rows, lambda source, arm: arm),
        "by_arm_and_source": _group(rows, lambda source, arm: f"{arm}/{source}"),
    }


async def report(engine: AsyncEngine, *, since: datetime, until: datetime) -> dict[str, Any]:
    return summarise(await counts(engine, since=since, until=until), since=since, until=until)
