"""Helpers for the m3 tests: settings for small fast models, users and events in the DB."""

from __future__ import annotations

import random
import uuid

import sqlalchemy as sa

from musicspace_m3.settings import Settings
from musicspace_shared.db.engine import make_engine
from tests.plugin import settings_maker

# Small and fast: the behaviour under test does not need a strong model.
make_settings = settings_maker(
    Settings,
    iterations=40,
    train_splits=1,
    n_candidates=200,
    finetune_iterations=10,
    finetune_splits=3,
    train_threads=1,
    catalog_check_s=0.0,
    reload_check_s=0.0,
)


async def users_with_tracks(db_url: str) -> list[tuple[int, list[str]]]:
    """Imported users and their PMS track ids, by user id."""
    engine = make_engine(url=db_url)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text("SELECT user_id, track_id FROM user_track ORDER BY user_id, track_id")
            )
        ).all()
    await engine.dispose()
    users: dict[int, list[str]] = {}
    for uid, tid in rows:
        users.setdefault(int(uid), []).append(tid)
    return sorted(users.items())


async def new_user(db_url: str, tracks: list[str]) -> int:
    """A fresh user owning the given tracks."""
    uid = random.randint(10_000_000, 2**40)
    engine = make_engine(url=db_url)
    async with engine.begin() as conn:
        await conn.execute(
            sa.text("INSERT INTO user (id, created_at, updated_at) VALUES (:id, NOW(), NOW())"),
            {"id": uid},
        )
        for t in tracks:
            await conn.execute(
                sa.text(
                    "INSERT INTO user_track (user_id, track_id, added_at) VALUES (:u, :t, NOW())"
                ),
                {"u": uid, "t": t},
            )
    await engine.dispose()
    return uid


def event(user_id: int, track_id: str, kind: str, event_id: str | None = None) -> dict[str, object]:
    return {
        "event_id": event_id or uuid.uuid4().hex,
        "user_id": user_id,
        "track_id": track_id,
        "kind": kind,
    }
