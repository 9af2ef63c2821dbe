"""job times to the microsecond on MariaDB/MySQL

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 01:40:00

SQLite already stores the fraction; MariaDB's DATETIME dropped it, so a job of a fraction of
a second had no duration, rate or ETA.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = {"heartbeat_at": True, "started_at": False, "updated_at": False, "finished_at": True}


def _alter(fsp: int) -> None:
    if op.get_bind().dialect.name not in ("mysql", "mariadb"):
        return
    for name, nullable in COLUMNS.items():
        op.alter_column(
            "job", name, type_=mysql.DATETIME(fsp=fsp) if fsp else mysql.DATETIME(),
            existing_nullable=nullable,
        )


def upgrade() -> None:
    _alter(6)


def downgrade() -> None:
    _alter(0)
