"""The tables every service reads; Alembic (../migrations) owns their DDL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlmodel import Field, SQLModel
from sqlmodel.sql.sqltypes import UTCDateTime

from musicspace_shared.features import FEATURES


def utcnow() -> datetime:
    # Aware UTC: SQLModel's datetime type stores UTC and hands it back with the zone.
    return datetime.now(UTC)


# Spotify ids are case-sensitive base62: compare them bytewise on MariaDB too.
TrackIdType = sa.String(64).with_variant(
    mysql.VARCHAR(64, collation="utf8mb4_bin"), "mysql", "mariadb"
)


class PreciseUTCDateTime(UTCDateTime):
    """UTCDateTime kept to the microsecond on MariaDB too (its DATETIME drops the fraction).

    For the job row (a job over the demo catalog takes a fraction of a second, and its rate,
    ETA and duration are computed from these times), track.updated_at (index syncs compare it)
    and the times m3's activity fingerprint reads (user, user_track, interaction).
    """

    cache_ok = True

    def __repr__(self) -> str:
        return "PreciseUTCDateTime()"

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return super().load_dialect_impl(dialect)


def _precise_time(**kwargs: Any) -> Any:
    return Field(sa_type=PreciseUTCDateTime, **kwargs)


def _feature_column() -> Any:
    return Field(default=None, sa_type=sa.Double)


class Track(SQLModel, table=True):
    __tablename__ = "track"

    track_id: str = Field(primary_key=True, sa_type=TrackIdType)
    title: str | None = Field(default=None, max_length=512)
    artist: str | None = Field(default=None, max_length=512, index=True)
    album: str | None = Field(default=None, max_length=512)
    album_id: str | None = Field(default=None, max_length=64)
    release_date: str | None = Field(default=None, max_length=10)
    popularity: int | None = Field(default=None)
    genre: str | None = Field(default=None, max_length=64, index=True)
    subgenre: str | None = Field(default=None, max_length=64, index=True)
    danceability: float | None = _feature_column()
    energy: float | None = _feature_column()
    valence: float | None = _feature_column()
    acousticness: float | None = _feature_column()
    instrumentalness: float | None = _feature_column()
    liveness: float | None = _feature_column()
    speechiness: float | None = _feature_column()
    tempo: float | None = _feature_column()
    loudness: float | None = _feature_column()
    # "measured" (from the catalog), "predicted" (m2 via enrichment) or NULL (no features yet).
    features_source: str | None = Field(default=None, max_length=16, index=True)
    external_metadata: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    created_at: datetime = Field(default_factory=utcnow)
    # Indexed and to the microsecond: index syncs read the tracks changed since a watermark
    # and compare each one's updated_at with the one they hold (two writes in one second differ).
    updated_at: datetime = _precise_time(default_factory=utcnow, index=True)


class User(SQLModel, table=True):
    __tablename__ = "user"

    # The web app owns the ids ({"user_id": 123}); imports assign the next free one.
    id: int = Field(
        primary_key=True, sa_type=sa.BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    # Where an imported user came from (e.g. a playlist id), unique so re-imports find it.
    external_ref: str | None = Field(default=None, max_length=128, unique=True)
    name: str | None = Field(default=None, max_length=256)
    created_at: datetime = Field(default_factory=utcnow)
    # Precise and indexed, as user_track.added_at and interaction.updated_at: m3's activity
    # fingerprint reads the latest of each (a library replace that only removes moves this one).
    updated_at: datetime = _precise_time(default_factory=utcnow, index=True)


class UserTrack(SQLModel, table=True):
    """A track in a user's personal music space (PMS) and the playlist it came from."""

    __tablename__ = "user_track"

    user_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
        )
    )
    track_id: str = Field(
        foreign_key="track.track_id", primary_key=True, sa_type=TrackIdType, index=True
    )
    playlist_id: str | None = Field(default=None, max_length=128)
    playlist_name: str | None = Field(default=None, max_length=256)
    added_at: datetime = _precise_time(default_factory=utcnow, index=True)


class Interaction(SQLModel, table=True):
    """A user's behaviour on one track, aggregated from events."""

    __tablename__ = "interaction"

    user_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
        )
    )
    track_id: str = Field(
        foreign_key="track.track_id", primary_key=True, sa_type=TrackIdType, index=True
    )
    play_count: int = Field(default=0)
    like_score: int = Field(default=0)  # -1 dislike, 0 none, 1 like
    skip_count: int = Field(default=0)
    last_played_at: datetime | None = Field(default=None)
    updated_at: datetime = _precise_time(default_factory=utcnow, index=True)


class InteractionEvent(SQLModel, table=True):
    """Each received event once per user, so a retried batch is not counted twice.

    The key is (user_id, event_id): event ids are the client's, unique per user only."""

    __tablename__ = "interaction_event"

    user_id: int = Field(primary_key=True, sa_type=sa.BigInteger)
    event_id: str = Field(primary_key=True, max_length=64)
    track_id: str = Field(sa_type=TrackIdType)
    # play | like | dislike | unlike | skip | click | impression
    kind: str = Field(max_length=16)
    occurred_at: datetime = Field(default_factory=utcnow, index=True)
    received_at: datetime = Field(default_factory=utcnow)
    # The recommend answer the event refers to (musicspace_shared.recommendation_ids), and the
    # source and A/B arm that id names, kept apart so the online report groups without parsing.
    recommendation_id: str | None = Field(default=None, max_length=66)
    source: str | None = Field(default=None, max_length=24)
    arm: str | None = Field(default=None, max_length=24)


class Job(SQLModel, table=True):
    """A durable background job (the bulk enrichment); checkpoints survive a crash."""

    __tablename__ = "job"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32, index=True)
    state: str = Field(max_length=16, index=True)  # queued|running|waiting|succeeded|failed
    total: int = Field(default=0)
    done: int = Field(default=0)
    failed: int = Field(default=0)
    checkpoint: str | None = Field(default=None, sa_type=TrackIdType)  # last track_id processed
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    owner: str | None = Field(default=None, max_length=128)  # process holding the lease
    heartbeat_at: datetime | None = _precise_time(default=None)
    started_at: datetime = _precise_time(default_factory=utcnow)
    updated_at: datetime = _precise_time(default_factory=utcnow)
    finished_at: datetime | None = _precise_time(default=None)


class JobItemFailure(SQLModel, table=True):
    """An item a job gave up on after its bounded attempts."""

    __tablename__ = "job_item_failure"

    job_id: int = Field(foreign_key="job.id", primary_key=True)
    item_id: str = Field(primary_key=True, sa_type=TrackIdType)
    attempts: int = Field(default=0)
    error: str | None = Field(default=None, sa_type=sa.Text)
    failed_at: datetime = Field(default_factory=utcnow)


class ModelRecord(SQLModel, table=True):
    """The model registry: one row per published model artifact (global or per user)."""

    __tablename__ = "model_record"

    id: int | None = Field(default=None, primary_key=True)
    family: str = Field(max_length=8, index=True)  # M1 | M2 | M3
    kind: str = Field(max_length=32)  # e.g. global, user_model, user_svm
    owner_id: int | None = Field(default=None, sa_type=sa.BigInteger, index=True)  # user id
    version: str = Field(max_length=64)
    path: str = Field(max_length=512)
    sha256: str = Field(max_length=64)
    rows: int = Field(default=0)
    metrics: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    trained_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = Field(default=None)


FEATURE_COLUMNS = tuple(getattr(Track, name) for name in FEATURES)
