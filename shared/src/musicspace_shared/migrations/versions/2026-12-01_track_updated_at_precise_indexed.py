"""track.updated_at to the microsecond on MariaDB, and indexed

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 13:55:00

The llm index sync reads the tracks whose updated_at differs from the one it indexed, at or
after its watermark; m1/m2/m3 check max(updated_at) to notice catalog changes. Both scanned
the whole table without an index, and with whole seconds (MariaDB's DATETIME) a track
written twice in one second (imported, then enriched) kept the same updated_at.
SQLite already stores the fraction. Existing values keep their whole seconds.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _precision(fsp: int) -> None:
    if op.get_bind().dialect.name in ("mysql", "mariadb"):
        op.alter_column(
            "track",
            "updated_at",
            type_=mysql.DATETIME(fsp=fsp) if fsp else mysql.DATETIME(),
            existing_nullable=False,
        )


def upgrade() -> None:
    _precision(6)
    op.create_index("ix_track_updated_at", "track", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_track_updated_at", table_name="track")
    _precision(0)
