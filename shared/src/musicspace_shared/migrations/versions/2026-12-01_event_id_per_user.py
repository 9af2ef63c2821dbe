"""event ids unique per user, not across all users

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 13:50:00

The key of interaction_event was event_id alone, so one user's event id could make another
user's event a "duplicate" (and a client could claim ids in advance). The key becomes
(user_id, event_id); every stored event is kept. The table is copied into one with the new
key (the same statements on MariaDB and SQLite, which cannot alter a primary key in place);
the separate user_id index goes, the key now leads with user_id.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = "event_id, user_id, track_id, kind, occurred_at, received_at"
TRACK_ID = sa.String(64).with_variant(mysql.VARCHAR(64, collation="utf8mb4_bin"), "mysql", "mariadb")


def _copy_into(key: list[str], *, keep: str = "") -> None:
    """Recreate interaction_event with primary key `key`, copying the rows (`keep` filters)."""
    op.create_table(
        "interaction_event_new",
        sa.Column("event_id", AutoString(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("track_id", TRACK_ID, nullable=False),
        sa.Column("kind", AutoString(length=16), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(*key, name="pk_interaction_event"),
    )
    op.execute(
        f"INSERT INTO interaction_event_new ({COLUMNS}) "
        f"SELECT {COLUMNS} FROM interaction_event e {keep}"
    )
    op.drop_table("interaction_event")
    op.rename_table("interaction_event_new", "interaction_event")


def upgrade() -> None:
    _copy_into(["user_id", "event_id"])


def downgrade() -> None:
    # Back to one owner per id: where two users share an id, the lower user id keeps it.
    _copy_into(
        ["event_id"],
        keep="WHERE NOT EXISTS (SELECT 1 FROM interaction_event o "
        "WHERE o.event_id = e.event_id AND o.user_id < e.user_id)",
    )
    op.create_index("ix_interaction_event_user_id", "interaction_event", ["user_id"])
