"""m1's queries: one round trip per request for the user, cheap catalog version checks."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from musicspace_shared.catalog import TrackFrame, load_tracks, load_user_tracks
from musicspace_shared.db.tables import Interaction, User, UserTrack


@dataclass
class UserTracks:
    owned: list[str]
    disliked: list[str]


_UID = sa.bindparam("user_id", type_=sa.BigInteger)
# Built once: the per-request cost is the round trip, not SQL construction.
_USER_TRACKS = sa.union_all(
    sa.select(sa.literal("u").label("kind"), sa.literal("").label("track_id")).where(
        User.id == _UID
    ),
    sa.select(sa.literal("o"), UserTrack.track_id).where(UserTrack.user_id == _UID),
    sa.select(sa.literal("d"), Interaction.track_id).where(
        Interaction.user_id == _UID, Interaction.like_score < 0
    ),
)


async def user_tracks(session: AsyncSession, *, user_id: int) -> UserTracks | None:
    """The user's PMS tracks and dislikes in one query; None when the user does not exist."""
    # Core execution on the session's connection: the ORM layer adds ~half again per query.
    connection = await session.connection()
    rows = (await connection.execute(_USER_TRACKS, {"user_id": user_id})).all()
    if not any(kind == "u" for kind, _ in rows):
        return None
    return UserTracks(
        owned=[t for kind, t in rows if kind == "o"],
        disliked=[t for kind, t in rows if kind == "d"],
    )


async def catalog(session: AsyncSession) -> TrackFrame:
    return await load_tracks(session)


async def all_user_tracks(session: AsyncSession) -> dict[int, list[str]]:
    return await load_user_tracks(session)
