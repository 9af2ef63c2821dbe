"""Helpers for the m2 tests: settings, a small model config, rows in the m2 tests' own database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from musicspace_m2.predictor import PredictorConfig
from musicspace_m2.settings import Settings
from musicspace_shared.db.engine import make_engine, make_sessionmaker
from musicspace_shared.db.tables import Interaction, UserTrack
from tests.plugin import settings_maker

# Small and fast: the behaviour under test does not need a strong model.
FAST_MODEL = PredictorConfig(folds=2, hgb_max_iter=25, hgb_min_samples_leaf=20)
make_settings = settings_maker(Settings, reload_check_s=0.0, catalog_check_s=0.0)


@asynccontextmanager
async def db_session(url: str) -> AsyncIterator[AsyncSession]:
    engine = make_engine(url=url)
    try:
        async with make_sessionmaker(engine)() as session:
            yield session
    finally:
        await engine.dispose()


async def user_with_most_tracks(session: AsyncSession) -> tuple[int, list[str]]:
    count = sa.func.count().label("n")
    row = (
        await session.execute(
            sa.select(UserTrack.user_id, count)
            .group_by(UserTrack.user_id)
            .order_by(count.desc(), UserTrack.user_id)
            .limit(1)
        )
    ).one()
    tracks = (
        (await session.execute(sa.select(UserTrack.track_id).where(UserTrack.user_id == row[0])))
        .scalars()
        .all()
    )
    return int(row[0]), list(tracks)


async def react(session: AsyncSession, *, user_id: int, track_id: str, like_score: int) -> None:
    session.add(
        Interaction(user_id=user_id, track_id=track_id, like_score=like_score, play_count=1)
    )
    await session.commit()


def unique_text(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:10]}"
