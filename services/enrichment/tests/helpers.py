"""Helpers for the enrichment tests: reset the database, audit writes, list tracks by state."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine


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
