"""Helpers for the enrichment tests: reset the database, audit writes, list tracks by state."""

from __future__ import annotations

import random
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from musicspace_enrichment.settings import Settings
from tests.processes import free_port

ADMIN_KEY = "test-admin-key"


def settings_for(url: str, **overrides: object) -> Settings:
    """Settings on `url` whose peers are all down (nothing listens), with an admin key."""
    dead = f"http://127.0.0.1:{free_port()}"
    values = {
        "database_url": url,
        "admin_api_key": ADMIN_KEY,
        "http_retries": 0,
        "resume_jobs": False,
        "m1_url": dead,
        "m2_url": dead,
        "m3_url": dead,
        "llm_url": dead,
    }
    return Settings(**(values | overrides))


def new_user_id() -> int:
    """A user id no other test uses (the session databases are shared)."""
    return random.randint(10**9, 10**12)


def new_track_id() -> str:
    return "t" + uuid.uuid4().hex[:21]


async def reset_enrichment(engine: AsyncEngine) -> None:
    """Undo every prediction and job, so each test starts from the imported state."""
    async with engine.begin() as conn:
        await conn.execute(sa.text("DELETE FROM job_item_failure"))
        await conn.execute(sa.text("DELETE FROM job"))
        await conn.execute(
            sa.text(
                "UPDATE track SET danceability=NULL, energy=NULL, valence=NULL, acousticness=NULL, "
                "instrumentalness=NULL, liveness=NULL, speechiness=NULL, tempo=NULL, loudness=NULL, "
                "features_source=NULL, external_metadata=NULL WHERE features_source='predicted'"
            )
        )


AUDIT_DDL = (
    "CREATE TABLE IF NOT EXISTS enrich_audit (track_id VARCHAR(64) COLLATE utf8mb4_bin NOT NULL, "
    "source VARCHAR(16), metadata_len INT)",
    # Every write that leaves a track predicted is recorded: a second merge would show up twice.
    "CREATE TRIGGER IF NOT EXISTS enrich_audit_trg AFTER UPDATE ON track FOR EACH ROW "
    "INSERT INTO enrich_audit (track_id, source, metadata_len) "
    "SELECT NEW.track_id, NEW.features_source, LENGTH(NEW.external_metadata) FROM DUAL "
    "WHERE NEW.features_source = 'predicted'",
)


async def install_audit(engine: AsyncEngine) -> None:
    """Test-only: a trigger that records each write of a prediction (MariaDB)."""
    async with engine.begin() as conn:
        for statement in AUDIT_DDL:
            await conn.execute(sa.text(statement))
        await conn.execute(sa.text("DELETE FROM enrich_audit"))


async def audit_counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text("SELECT track_id, COUNT(*) FROM enrich_audit GROUP BY track_id")
            )
        ).all()
    return {track_id: count for track_id, count in rows}


async def lacking_ids(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text("SELECT track_id FROM track WHERE features_source IS NULL ORDER BY track_id")
        )
        return [row[0] for row in rows]


async def predicted_ids(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text(
                "SELECT track_id FROM track WHERE features_source = 'predicted' ORDER BY track_id"
            )
        )
        return [row[0] for row in rows]
