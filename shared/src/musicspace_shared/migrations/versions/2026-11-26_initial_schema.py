"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-26 19:42:51.228849
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('interaction_event',
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('track_id', sa.String(length=64).with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=64), 'mariadb').with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=64), 'mysql'), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('occurred_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )
    with op.batch_alter_table('interaction_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_interaction_event_user_id'), ['user_id'], unique=False)

    op.create_table('job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('checkpoint', sa.String(length=64).with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=64), 'mariadb').with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=64), 'mysql'), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('heartbeat_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_job_state'), ['state'], unique=False)

    op.create_table('model_record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('family', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('owner_id', sa.BigInteger(), nullable=True),
    sa.Column('version', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('path', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=True),
    sa.Column('trained_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('last_used_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('model_record', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_model_record_family'), ['family'], unique=False)
        batch_op.create_index(batch_op.f('ix_model_record_owner_id'), ['owner_id'], unique=False)

    op.create_table('track',
    sa.Column('track_id', sa.String(length=64).with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=64), 'mariadb').with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=64), 'mysql'), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True),
    sa.Column('artist', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True),
    sa.Column('album', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True),
    sa.Column('album_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('release_date', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
    sa.Column('popularity', sa.Integer(), nullable=True),
    sa.Column('genre', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('subgenre', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('danceability', sa.Double(), nullable=True),
    sa.Column('energy', sa.Double(), nullable=True),
    sa.Column('valence', sa.Double(), nullable=True),
    sa.Column('acousticness', sa.Double(), nullable=True),
    sa.Column('instrumentalness', sa.Double(), nullable=True),
    sa.Column('liveness', sa.Double(), nullable=True),
    sa.Column('speechiness', sa.Double(), nullable=True),
    sa.Column('tempo', sa.Double(), nullable=True),
    sa.Column('loudness', sa.Double(), nullable=True),
    sa.Column('features_source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('external_metadata', sa.JSON(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('track_id')
    )
    with op.batch_alter_table('track', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_track_artist'), ['artist'], unique=False)
        batch_op.create_index(batch_op.f('ix_track_features_source'), ['features_source'], unique=False)
        batch_op.create_index(batch_op.f('ix_track_genre'), ['genre'], unique=False)
        batch_op.create_index(batch_op.f('ix_track_subgenre'), ['subgenre'], unique=False)

    op.create_table('user',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('external_ref', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('external_ref')
    )
    op.create_table('interaction',
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('track_id', sa.String(length=64).with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=64), 'mariadb').with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=64), 'mysql'), nullable=False),
    sa.Column('play_count', sa.Integer(), nullable=False),
    sa.Column('like_score', sa.Integer(), nullable=False),
    sa.Column('skip_count', sa.Integer(), nullable=False),
    sa.Column('last_played_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['track_id'], ['track.track_id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'track_id')
    )
    with op.batch_alter_table('interaction', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_interaction_track_id'), ['track_id'], unique=False)

    op.create_table('job_item_failure',
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.String(length=64).with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=64), 'mariadb').with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=64), 'mysql'), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('failed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], ),
    sa.PrimaryKeyConstraint('job_id', 'item_id')
    )
    op.create_table('user_track',
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('track_id', sa.String(length=64).with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=64), 'mariadb').with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=64), 'mysql'), nullable=False),
    sa.Column('playlist_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('playlist_name', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
    sa.Column('added_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['track_id'], ['track.track_id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'track_id')
    )
    with op.batch_alter_table('user_track', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_track_track_id'), ['track_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('user_track', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_track_track_id'))

    op.drop_table('user_track')
    op.drop_table('job_item_failure')
    with op.batch_alter_table('interaction', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_interaction_track_id'))

    op.drop_table('interaction')
    op.drop_table('user')
    with op.batch_alter_table('track', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_track_subgenre'))
        batch_op.drop_index(batch_op.f('ix_track_genre'))
        batch_op.drop_index(batch_op.f('ix_track_features_source'))
        batch_op.drop_index(batch_op.f('ix_track_artist'))

    op.drop_table('track')
    with op.batch_alter_table('model_record', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_record_owner_id'))
        batch_op.drop_index(batch_op.f('ix_model_record_family'))

    op.drop_table('model_record')
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_state'))
        batch_op.drop_index(batch_op.f('ix_job_kind'))

    op.drop_table('job')
    with op.batch_alter_table('interaction_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_interaction_event_user_id'))

    op.drop_table('interaction_event')
