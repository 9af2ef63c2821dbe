"""Interaction events: store each event id once per user, aggregate new ones into `interaction`.

A batch is one transaction: the new events are inserted into `interaction_event` (its primary
key is (user_id, event_id): ids are the client's, unique per user, so one user's id never
hides another user's event) and their counts are added to `interaction` with set-based
upserts. If a concurrent request inserted one of the same keys first, the insert fails on the
key, the transaction rolls back and the batch is retried once, now seeing those events as
duplicates: an event is counted once however often it is sent.

Kinds: play, skip, like, dislike, unlike change the user's `interaction` row; click and
impression (what the app showed and what was tapped) are stored only, for online
measurement. Any event may carry the `recommendation_id` of the answer it follows: its source
and A/B arm are stored beside it (musicspace_shared.recommendation_ids), and the online
report (`musicspace report online`) reads them.

occurred_at must lie between 2000-01-01 and a few minutes ahead of the server clock
(`check_occurred_at`, applied by the request schema): `last_played_at` keeps the latest play,
so one far-future timestamp would otherwise pin it for good.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from musicspace_shared.db.tables import Interaction, InteractionEvent, Track, User, utcnow
from musicspace_shared.recommendation_ids import parse

LIKE_VALUE = {"like": 1, "dislike": -1, "unlike": 0}
# Kinds that change nothing in `interaction`: kept for the online report only.
EXPOSURE_KINDS = frozenset({"click", "impression"})
EARLIEST_OCCURRED_AT = datetime(2000, 1, 1, tzinfo=UTC)
# Clients' clocks run a little ahead of ours; more than this is a wrong clock or a made-up time.
MAX_CLOCK_AHEAD = timedelta(minutes=5)


def check_occurred_at(value: datetime | None) -> datetime | None:
    """The event time (UTC when it has no zone); ValueError outside 2000-01-01 .. now + 5 min."""
    if value is None:
        return None
    aware = _aware(value)
    assert aware is not None
    if aware < EARLIEST_OCCURRED_AT:
        raise ValueError("occurred_at must be on or after 2000-01-01T00:00:00Z")
    latest = utcnow() + MAX_CLOCK_AHEAD
    if aware > latest:
        raise ValueError(
            "occurred_at must not be more than 5 minutes ahead of the server clock "
            f"(latest accepted now: {latest.isoformat(timespec='seconds')})"
        )
    return aware


@dataclass(frozen=True)
class Event:
    event_id: str
    user_id: int
    track_id: str
    kind: str  # play | like | dislike | unlike | skip | click | impression
    occurred_at: datetime | None = None
    recommendation_id: str | None = None  # checked by the request schema


@dataclass
class EventResult:
    event_id: str
    status: str  # recorded | duplicate | unknown_user | unknown_track


async def record_events(*, session: AsyncSession, events: list[Event]) -> list[EventResult]:
    """Record a batch idempotently; one result per input event, in input order."""
    for attempt in range(2):
        try:
            return await _record_once(session, events)
        except IntegrityError:
            await session.rollback()
            if attempt == 1:
                raise
    raise AssertionError("unreachable")


async def _record_once(session: AsyncSession, events: list[Event]) -> list[EventResult]:
    ids = list({e.event_id for e in events})
    user_ids = list({e.user_id for e in events})
    track_ids = list({e.track_id for e in events})
    # Both lists narrow the key (user_id, event_id); the exact pairs are matched below.
    existing = {
        (int(r[0]), r[1])
        for r in (
            await session.execute(
                sa.select(InteractionEvent.user_id, InteractionEvent.event_id).where(
                    InteractionEvent.user_id.in_(user_ids), InteractionEvent.event_id.in_(ids)
                )
            )
        ).all()
    }
    users = {
        r[0] for r in (await session.execute(sa.select(User.id).where(User.id.in_(user_ids)))).all()
    }
    tracks = {
        r[0]
        for r in (
            await session.execute(sa.select(Track.track_id).where(Track.track_id.in_(track_ids)))
        ).all()
    }
    results: list[EventResult] = []
    fresh: list[Event] = []
    seen: set[tuple[int, str]] = set()
    for e in events:
        key = (e.user_id, e.event_id)
        if key in existing or key in seen:
            status = "duplicate"
        elif e.user_id not in users:
            status = "unknown_user"
        elif e.track_id not in tracks:
            status = "unknown_track"
        else:
            status = "recorded"
            fresh.append(e)
            seen.add(key)
        results.append(EventResult(e.event_id, status))
    if fresh:
        now = utcnow()
        await session.execute(
            sa.insert(InteractionEvent),
            [
                {
                    "event_id": e.event_id,
                    "user_id": e.user_id,
                    "track_id": e.track_id,
                    "kind": e.kind,
                    "occurred_at": _aware(e.occurred_at) or now,
                    "received_at": now,
                    **_attribution(e.recommendation_id),
                }
                for e in fresh
            ],
        )
        await _aggregate(session, [e for e in fresh if e.kind not in EXPOSURE_KINDS], now)
    await session.commit()
    return results


def count_feedback(metrics: Any, events: list[Event], results: list[EventResult]) -> None:
    """Count each newly recorded event that names a recommendation, by its source, arm, kind
    (musicspace_feedback_events_total): duplicates and rejected events are not counted."""
    for event, result in zip(events, results, strict=True):
        if result.status == "recorded" and event.recommendation_id is not None:
            parsed = parse(event.recommendation_id)
            metrics.feedback_event(source=parsed.source, arm=parsed.arm, kind=event.kind)


def _attribution(recommendation_id: str | None) -> dict[str, str | None]:
    """The id and the source and arm it names (all None for an event that names none)."""
    if recommendation_id is None:
        return {"recommendation_id": None, "source": None, "arm": None}
    parsed = parse(recommendation_id)
    return {"recommendation_id": recommendation_id, "source": parsed.source, "arm": parsed.arm}


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def _aggregate(session: AsyncSession, events: list[Event], now: datetime) -> None:
    """Add plays/skips and set the latest like state per (user, track): two set-based upserts.
    (Clicks and impressions never come here: they change no interaction.)"""
    agg: dict[tuple[int, str], dict[str, Any]] = defaultdict(
        lambda: {"plays": 0, "skips": 0, "like": None, "like_at": None, "last": None}
    )
    for e in sorted(events, key=lambda ev: _aware(ev.occurred_at) or now):
        entry = agg[(e.user_id, e.track_id)]
        at = _aware(e.occurred_at) or now
        if e.kind == "play":
            entry["plays"] += 1
            entry["last"] = at if entry["last"] is None else max(entry["last"], at)
        elif e.kind == "skip":
            entry["skips"] += 1
        else:
            entry["like"] = LIKE_VALUE[e.kind]  # the latest like/dislike/unlike of the batch wins
    rows = [
        {
            "user_id": u,
            "track_id": t,
            "play_count": a["plays"],
            "skip_count": a["skips"],
            "like_score": a["like"] if a["like"] is not None else 0,
            "last_played_at": a["last"],
            "updated_at": now,
            "_sets_like": a["like"] is not None,
        }
        for (u, t), a in agg.items()
    ]
    for sets_like in (True, False):
        part = [
            {k: v for k, v in r.items() if k != "_sets_like"}
            for r in rows
            if r["_sets_like"] is sets_like
        ]
        if part:
            await session.execute(_upsert(session, sets_like), part)


def _upsert(session: AsyncSession, sets_like: bool) -> Any:
    table = Interaction.__table__
    if session.bind.dialect.name == "sqlite":
        stmt = sqlite.insert(table)
        new = stmt.excluded
        greatest = sa.func.max
    else:
        stmt = mysql.insert(table)
        new = stmt.inserted
        greatest = sa.func.greatest
    values = {
        "play_count": table.c.play_count + new.play_count,
        "skip_count": table.c.skip_count + new.skip_count,
        "last_played_at": sa.func.coalesce(
            greatest(table.c.last_played_at, new.last_played_at),
            table.c.last_played_at,
            new.last_played_at,
        ),
        "updated_at": new.updated_at,
    }
    if sets_like:
        values["like_score"] = new.like_score
    if session.bind.dialect.name == "sqlite":
        return stmt.on_conflict_do_update(
            index_elements=[table.c.user_id, table.c.track_id], set_=values
        )
    return stmt.on_duplicate_key_update(**values)
