"""recommend's queries: what data a user has, their own tracks, popular and new tracks per genre."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from musicspace_shared.db.tables import Interaction, Track, User, UserTrack
from musicspace_shared.features import FEATURES


@dataclass(frozen=True)
class UserData:
    library: int  # PMS tracks
    interactions: int  # tracks played, liked, disliked or skipped


@dataclass(frozen=True)
class GenreTrack:
    track_id: str
    title: str | None
    artist: str | None
    genre: str | None
    rank: int  # within its genre, from 1


async def user_data(session: AsyncSession, user_id: int) -> UserData | None:
    """How much the models have to go on for this user; None for an unknown user."""
    library = sa.select(sa.func.count()).where(col(UserTrack.user_id) == user_id).scalar_subquery()
    interactions = (
        sa.select(sa.func.count()).where(col(Interaction.user_id) == user_id).scalar_subquery()
    )
    row = (
        await session.execute(
            sa.select(library, interactions).select_from(User).where(col(User.id) == user_id)
        )
    ).first()
    return None if row is None else UserData(library=int(row[0]), interactions=int(row[1]))


async def owned_tracks(session: AsyncSession, user_id: int) -> set[str]:
    rows = await session.execute(
        sa.select(col(UserTrack.track_id)).where(col(UserTrack.user_id) == user_id)
    )
    return {row[0] for row in rows}


async def top_per_genre(
    session: AsyncSession, *, order: list[Any], per_genre: int
) -> list[GenreTrack]:
    """The first `per_genre` tracks of each genre in `order` (one windowed query)."""
    rank = sa.func.row_number().over(partition_by=col(Track.genre), order_by=order).label("rank")
    ranked = sa.select(
        col(Track.track_id), col(Track.title), col(Track.artist), col(Track.genre), rank
    ).subquery()
    rows = await session.execute(
        sa.select(ranked)
        .where(ranked.c.rank <= per_genre)
        .order_by(ranked.c.rank, ranked.c.genre, ranked.c.track_id)
    )
    return [GenreTrack(r.track_id, r.title, r.artist, r.genre, int(r.rank)) for r in rows]


async def popular_per_genre(session: AsyncSession, per_genre: int) -> list[GenreTrack]:
    # NULL popularity sorts last on both engines with DESC.
    return await top_per_genre(
        session, order=[col(Track.popularity).desc(), col(Track.track_id)], per_genre=per_genre
    )


async def new_per_genre(session: AsyncSession, per_genre: int) -> list[GenreTrack]:
    return await top_per_genre(
        session, order=[col(Track.created_at).desc(), col(Track.track_id)], per_genre=per_genre
    )


async def track_rows(session: AsyncSession, track_ids: list[str]) -> dict[str, Any]:
    """The catalog columns the filters and the per-artist cap read, by track id (known ids)."""
    columns = [col(Track.track_id), col(Track.artist), col(Track.genre), col(Track.subgenre)]
    columns += [col(Track.release_date), *(getattr(Track, name) for name in FEATURES)]
    found: dict[str, Any] = {}
    for start in range(0, len(track_ids), 500):
        chunk = track_ids[start : start + 500]
        rows = await session.execute(sa.select(*columns).where(col(Track.track_id).in_(chunk)))
        found.update({row.track_id: row for row in rows})
    return found
