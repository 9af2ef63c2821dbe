"""events refer to recommendations: recommendation_id, its source and arm; occurred_at indexed

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 20:00:00

Online measurement (issue 17): an event (play, like, skip, and the new kinds click and
impression) may name the recommend answer it follows. The id's source and A/B arm are stored
beside it, so the online report (`musicspace report online`) groups by them; occurred_at is
indexed for the report's time window. Three nullable columns: every stored event is kept
as it is (no recommendation). `kind` is a VARCHAR(16) already: the new kinds need no DDL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

INDEX = "ix_interaction_event_occurred_at"


def upgrade() -> None:
    with op.batch_alter_table("interaction_event") as batch:
        batch.add_column(sa.Column("recommendation_id", AutoString(length=66), nullable=True))
        batch.add_column(sa.Column("source", AutoString(length=24), nullable=True))
        batch.add_column(sa.Column("arm", AutoString(length=24), nullable=True))
    op.create_index(INDEX, "interaction_event", ["occurred_at"])


def downgrade() -> None:
    # The events stay; clicks and impressions (meaningless without their ids) go.
    op.drop_index(INDEX, table_name="interaction_event")
    op.execute("DELETE FROM interaction_event WHERE kind IN ('click', 'impression')")
    with op.batch_alter_table("interaction_event") as batch:
        batch.drop_column("arm")
        batch.drop_column("source")
        batch.drop_column("recommendation_id")
