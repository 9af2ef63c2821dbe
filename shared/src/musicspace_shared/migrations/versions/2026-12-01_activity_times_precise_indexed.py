"""user_track.added_at, interaction.updated_at and user.updated_at to the microsecond on
MariaDB, and indexed

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 23:15:00

m3 notices changed libraries and interactions by a fingerprint it reads every
M3_CATALOG_CHECK_S (10 s) on every replica. It was COUNT(*) of user_track and interaction plus
SUM(play_count + skip_count): full scans, 5.7 s per check at 2M interactions on the bench
machine (30 s at 10M: the database never rests). With these times precise and indexed, the
fingerprint is the latest of each (one index dive each) plus the user count (small): every
insert or update moves a latest time (to the microsecond, so two writes in one second differ),
and removals move the user's updated_at (a library replace) or the user count (an erasure).
SQLite already stores the fraction. Existing values keep their whole seconds.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy.dialects import mysql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = (
    ("user_track", "added_at", "ix_user_track_added_at"),
    ("interaction", "updated_at", "ix_interaction_updated_at"),
    ("user", "updated_at", "ix_user_updated_at"),
)


def _precision(table: str, column: str, fsp: int) -> None:
    if op.get_bind().dialect.name in ("mysql", "mariadb"):
        op.alter_column(
            table,
            column,
            type_=mysql.DATETIME(fsp=fsp) if fsp else mysql.DATETIME(),
            existing_nullable=False,
        )


def upgrade() -> None:
    for table, column, index in COLUMNS:
        _precision(table, column, 6)
        op.create_index(index, table, [column])


def downgrade() -> None:
    for table, column, index in reversed(COLUMNS):
        op.drop_index(index, table_name=table)
        _precision(table, column, 0)
