"""Every query enrichment runs: tracks lacking features, the set-based write, the job row.

"Lacking features" means features_source IS NULL (the importer sets 'measured' whenever a
catalog row has all nine values). The write is conditional on exactly that, so measured
features are never overwritten and a prediction is never applied twice, whoever races.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from musicspace_shared.db.json_patch import merge_patch_expr
from musicspace_shared.db.tables import (
    Interaction,
    Job,
    JobItemFailure,
    ModelRecord,
    Track,
    User,
    UserTrack,
    utcnow,
)
from musicspace_shared.features import FEATURES

JOB_KIND = "enrich_all"
ACTIVE_STATES = ("queued", "running", "waiting")
# Serialises "is a job active? else create one" across replicas (MariaDB named lock).
START_LOCK = "musicspace_enrich_all_start"

track = Track.__table__
job = Job.__table__
job_failure = JobItemFailure.__table__


@dataclass(frozen=True)
class TrackRow:
    """A track to predict. m2 gets its id, not its text: m2 then reads the whole row itself
    (album id and release year included, which the text form cannot carry), the payload is
    small, and no free-text field can fail m2's validation and sink a batch."""

    track_id: str

    def predict_item(self) -> dict[str, Any]:
        return {"track_id": self.track_id}


_TRACK_ROW_COLUMNS = (track.c.track_id,)
LACKING = track.c.features_source.is_(None)


async def lacking_batch(conn: AsyncConnection, *, after: str | None, limit: int) -> list[TrackRow]:
    """The next `limit` tracks lacking features with track_id > after, in track_id order."""
    query = sa.select(*_TRACK_ROW_COLUMNS).where(LACKING).order_by(track.c.track_id).limit(limit)
    if after is not None:
        query = query.where(track.c.track_id > after)
    return [TrackRow(*row) for row in (await conn.execute(query)).all()]


async def count_lacking(conn: AsyncConnection) -> int:
    return int(
        (
            await conn.execute(sa.select(sa.func.count()).select_from(track).where(LACKING))
        ).scalar_one()
    )


async def user_exists(conn: AsyncConnection, user_id: int) -> bool:
    return (await conn.execute(sa.select(User.id).where(User.id == user_id))).first() is not None


async def user_track_counts(conn: AsyncConnection, user_id: int) -> tuple[int, list[TrackRow]]:
    """(number of PMS tracks, the ones lacking features)."""
    total = (
        await conn.execute(
            sa.select(sa.func.count()).select_from(UserTrack).where(UserTrack.user_id == user_id)
        )
    ).scalar_one()
    query = (
        sa.select(*_TRACK_ROW_COLUMNS)
        .join(UserTrack, UserTrack.track_id == track.c.track_id)
        .where(UserTrack.user_id == user_id, LACKING)
        .order_by(track.c.track_id)
    )
    return int(total), [TrackRow(*row) for row in (await conn.execute(query)).all()]


# ---------------------------------------------------------------- the set-based write


def _values_source(dialect_name: str, payload: str) -> sa.Subquery:
    """The batch as a derived table v(track_id, <9 features>) built from ONE JSON parameter.

    One parameter instead of 10 per row keeps the statement small and its parse cheap.
    MariaDB: JSON_TABLE (10.6+). SQLite: json_each (with UPDATE ... FROM, 3.33+).
    """
    if dialect_name == "sqlite":
        columns = [sa.literal_column("json_extract(je.value, '$.i')").label("track_id")] + [
            sa.literal_column(f"json_extract(je.value, '$.f[{i}]')").label(name)
            for i, name in enumerate(FEATURES)
        ]
        source = sa.text("json_each(:payload) AS je").bindparams(payload=payload)
    else:
        # The id column is declared with the track table's collation (bytewise), so the join
        # uses the primary key and case-different Spotify ids never match each other.
        defs = ", ".join(f"{name} DOUBLE PATH '$.f[{i}]'" for i, name in enumerate(FEATURES))
        source = sa.text(
            "JSON_TABLE(:payload, '$[*]' COLUMNS ("
            "track_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PATH '$.i', "
            f"{defs})) AS je"
        ).bindparams(payload=payload)
        columns = [sa.literal_column(f"je.{name}").label(name) for name in ("track_id", *FEATURES)]
    return sa.select(*columns).select_from(source).subquery("v")


def _lacking_by_row(dialect_name: str) -> sa.ColumnElement[bool]:
    """LACKING, checked on each track the batch names, never used to find tracks.

    SQLite otherwise walks the features_source index over every track lacking features and
    scans the whole batch for each (measured: 1.5 s per 1,000 rows with 2,835 lacking; a
    100k catalog would take hours). A unary + keeps SQLite off that index, so the batch
    drives and each track is found by its primary key. MariaDB already joins that way.
    """
    if dialect_name == "sqlite":
        return sa.literal_column(f"+{track.name}.{track.c.features_source.name}").is_(None)
    return LACKING


async def write_predictions(
    conn: AsyncConnection,
    predictions: Sequence[tuple[str, Sequence[float]]],
    *,
    model_version: str,
    predicted_at: datetime,
) -> int:
    """One UPDATE for the whole batch; returns how many tracks it enriched.

    Only tracks still lacking features are touched (features_source IS NULL): measured ones
    keep their values and a repeat of the same batch changes nothing.
    """
    if not predictions:
        return 0
    dialect = conn.dialect
    payload = orjson.dumps([{"i": tid, "f": values} for tid, values in predictions]).decode()
    v = _values_source(dialect.name, payload)
    stamp = predicted_at.isoformat(timespec="seconds")
    patch = sa.func.json_object(
        "audio_features",
        sa.func.json_object(
            *[part for name in FEATURES for part in (name, v.c[name])],
            "source",
            "m2",
            "model_version",
            model_version,
            "predicted_at",
            stamp,
        ),
    )
    statement = (
        sa.update(track)
        .where(track.c.track_id == v.c.track_id, _lacking_by_row(dialect.name))
        .values(
            **{name: v.c[name] for name in FEATURES},
            features_source="predicted",
            external_metadata=merge_patch_expr(track.c.external_metadata, patch, dialect),
            updated_at=predicted_at,
        )
    )
    result = await conn.execute(statement)
    return int(result.rowcount or 0)


# ---------------------------------------------------------------- the job row


async def active_job(conn: AsyncConnection) -> sa.Row[Any] | None:
    query = (
        sa.select(job)
        .where(job.c.kind == JOB_KIND, job.c.state.in_(ACTIVE_STATES))
        .order_by(job.c.id.desc())
        .limit(1)
    )
    return (await conn.execute(query)).first()


async def latest_job(conn: AsyncConnection) -> sa.Row[Any] | None:
    query = sa.select(job).where(job.c.kind == JOB_KIND).order_by(job.c.id.desc()).limit(1)
    return (await conn.execute(query)).first()


async def get_job(conn: AsyncConnection, job_id: int) -> sa.Row[Any] | None:
    return (await conn.execute(sa.select(job).where(job.c.id == job_id))).first()


async def create_job(conn: AsyncConnection, *, owner: str, total: int) -> int:
    now = utcnow()
    result = await conn.execute(
        sa.insert(job).values(
            kind=JOB_KIND,
            state="running",
            total=total,
            done=0,
            failed=0,
            owner=owner,
            heartbeat_at=now,
            started_at=now,
            updated_at=now,
        )
    )
    return int(result.inserted_primary_key[0])


async def acquire_start_lock(conn: AsyncConnection) -> bool:
    """MariaDB named lock (SQLite serialises writers anyway); False if not had within 10 s."""
    if conn.dialect.name == "sqlite":
        return True
    got = await conn.execute(sa.text("SELECT GET_LOCK(:name, 10)"), {"name": START_LOCK})
    return got.scalar() == 1


async def release_start_lock(conn: AsyncConnection) -> None:
    if conn.dialect.name != "sqlite":
        await conn.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": START_LOCK})


async def orphaned_jobs(conn: AsyncConnection, *, stale_before: datetime) -> list[int]:
    """Active jobs nobody holds: no owner, or an owner whose heartbeat is older than the lease."""
    query = (
        sa.select(job.c.id)
        .where(
            job.c.kind == JOB_KIND,
            job.c.state.in_(ACTIVE_STATES),
            sa.or_(
                job.c.owner.is_(None),
                job.c.heartbeat_at.is_(None),
                job.c.heartbeat_at < stale_before,
            ),
        )
        .order_by(job.c.id)
    )
    return [row[0] for row in (await conn.execute(query)).all()]


async def claim_job(
    conn: AsyncConnection, job_id: int, *, owner: str, stale_before: datetime
) -> bool:
    """Compare-and-set the lease: succeeds only if the job is still orphaned."""
    now = utcnow()
    result = await conn.execute(
        sa.update(job)
        .where(
            job.c.id == job_id,
            job.c.state.in_(ACTIVE_STATES),
            sa.or_(
                job.c.owner.is_(None),
                job.c.heartbeat_at.is_(None),
                job.c.heartbeat_at < stale_before,
            ),
        )
        .values(owner=owner, heartbeat_at=now, updated_at=now, state="running")
    )
    return result.rowcount == 1


async def touch_job(conn: AsyncConnection, job_id: int, *, owner: str, **values: Any) -> bool:
    """Update the job only while we hold its lease (heartbeat, state); False if we lost it."""
    now = utcnow()
    result = await conn.execute(
        sa.update(job)
        .where(job.c.id == job_id, job.c.owner == owner)
        .values(heartbeat_at=now, updated_at=now, **values)
    )
    return result.rowcount == 1


async def advance_checkpoint(
    conn: AsyncConnection,
    job_id: int,
    *,
    owner: str,
    checkpoint: str,
    done: int,
    failed: int,
    state: str,
    waiting_reason: str | None = None,
) -> bool:
    """Move the checkpoint and counters, only while we hold the lease (same transaction as the
    write). A "waiting" state carries its reason (enrich-status shows it as waiting_reason)."""
    reason = {"last_error": waiting_reason} if state == "waiting" and waiting_reason else {}
    return await touch_job(
        conn,
        job_id,
        owner=owner,
        checkpoint=checkpoint,
        state=state,
        done=job.c.done + done,
        failed=job.c.failed + failed,
        **reason,
    )


async def record_failures(
    conn: AsyncConnection, job_id: int, failures: Sequence[tuple[str, int, str]]
) -> int:
    """List items given up on; a replay after a crash inserts nothing twice. Returns rows added."""
    if not failures:
        return 0
    now = utcnow()
    statement = (
        sa.insert(job_failure)
        .prefix_with("IGNORE", dialect="mysql")
        .prefix_with("OR IGNORE", dialect="sqlite")
    )
    rows = [
        {"job_id": job_id, "item_id": tid, "attempts": n, "error": err[:2000], "failed_at": now}
        for tid, n, err in failures
    ]
    result = await conn.execute(statement, rows)
    return int(result.rowcount or 0) if result.rowcount not in (None, -1) else len(rows)


async def finish_job(
    conn: AsyncConnection, job_id: int, *, owner: str, state: str, error: str | None = None
) -> bool:
    values: dict[str, Any] = {"state": state, "finished_at": utcnow()}
    if error is not None:
        values["last_error"] = error[:4000]
    # Tracks created after the job started may have been processed too: keep total honest.
    values["total"] = sa.case(
        (job.c.total < job.c.done + job.c.failed, job.c.done + job.c.failed), else_=job.c.total
    )
    return await touch_job(conn, job_id, owner=owner, **values)


async def release_job(conn: AsyncConnection, job_id: int, *, owner: str) -> None:
    """Graceful stop: give the lease back so the next process resumes at once."""
    await conn.execute(
        sa.update(job)
        .where(job.c.id == job_id, job.c.owner == owner, job.c.state.in_(ACTIVE_STATES))
        .values(owner=None, heartbeat_at=None, state="queued", updated_at=utcnow())
    )


async def job_failures(conn: AsyncConnection, job_id: int, *, limit: int) -> list[sa.Row[Any]]:
    query = (
        sa.select(job_failure)
        .where(job_failure.c.job_id == job_id)
        .order_by(job_failure.c.item_id)
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


# ---------------------------------------------------------------- "did anything change?"


async def user_data_changed_at(conn: AsyncConnection, user_id: int) -> datetime | None:
    """The newest change a user model depends on: PMS list, interactions, the tracks' features.

    user.updated_at moves when a library write removed tracks (which leaves no added_at)."""
    parts = [
        sa.select(User.updated_at).where(User.id == user_id),
        sa.select(sa.func.max(UserTrack.added_at)).where(UserTrack.user_id == user_id),
        sa.select(sa.func.max(Interaction.updated_at)).where(Interaction.user_id == user_id),
        sa.select(sa.func.max(track.c.updated_at))
        .join(UserTrack, UserTrack.track_id == track.c.track_id)
        .where(UserTrack.user_id == user_id),
    ]
    stamps = [(await conn.execute(part)).scalar() for part in parts]
    stamps = [_aware(s) for s in stamps if s is not None]
    return max(stamps) if stamps else None


async def model_trained_at(conn: AsyncConnection, *, family: str, user_id: int) -> datetime | None:
    """When the newest registered per-user model of a family was trained (if services register them)."""
    query = sa.select(sa.func.max(ModelRecord.trained_at)).where(
        ModelRecord.family == family, ModelRecord.owner_id == user_id
    )
    value = (await conn.execute(query)).scalar()
    return _aware(value) if value is not None else None


def _aware(value: Any) -> datetime:
    """Aggregates bypass the column type: parse and mark UTC where the driver hands back naive."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def stale_before(lease_s: float) -> datetime:
    """Heartbeats older than this are stale. MariaDB DATETIME keeps whole seconds (a stored
    heartbeat can look up to 1 s older than it is), so one second of slack is added."""
    return utcnow() - timedelta(seconds=lease_s + 1.0)
