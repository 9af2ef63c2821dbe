"""m3's queries: users' tracks and interactions, cheap change fingerprints, model registry rows."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from musicspace_shared.catalog import catalog_version, stream_pages
from musicspace_shared.db.tables import Interaction, ModelRecord, User, UserTrack


@dataclass
class RawUser:
    """One user's PMS track ids and interactions (track_id -> plays, like, skips)."""

    pms: list[str] = field(default_factory=list)
    interactions: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    @property
    def liked(self) -> set[str]:
        return {t for t, (_p, like, _s) in self.interactions.items() if like > 0}

    @property
    def disliked(self) -> set[str]:
        return {t for t, (_p, like, _s) in self.interactions.items() if like < 0}

    @property
    def positives(self) -> list[str]:
        """PMS tracks, likes, and plays that were not mostly skipped (and not disliked)."""
        played = {
            t
            for t, (plays, like, skips) in self.interactions.items()
            if plays > skips and like >= 0
        }
        return sorted(set(self.pms) | self.liked | played)

    @property
    def negatives(self) -> list[str]:
        """Dislikes and tracks skipped more often than played (unless in the PMS or liked)."""
        skipped = {
            t
            for t, (plays, like, skips) in self.interactions.items()
            if skips > plays and like <= 0
        }
        return sorted((self.disliked | skipped) - set(self.pms) - self.liked)

    @property
    def owned(self) -> set[str]:
        """Never recommended: PMS tracks and likes (already theirs), and dislikes."""
        return set(self.pms) | self.liked | self.disliked


_UID = sa.bindparam("user_id", type_=sa.BigInteger)
_ZERO = sa.literal(0, sa.Integer)
# Built once, one round trip: the user row ("u", tells an unknown user from one without data),
# the PMS tracks ("p") and the interactions ("i").
_USER = sa.union_all(
    sa.select(
        sa.literal("u").label("kind"),
        sa.literal("").label("track_id"),
        _ZERO.label("plays"),
        _ZERO.label("likes"),
        _ZERO.label("skips"),
    ).where(User.id == _UID),
    sa.select(sa.literal("p"), UserTrack.track_id, _ZERO, _ZERO, _ZERO).where(
        UserTrack.user_id == _UID
    ),
    sa.select(
        sa.literal("i"),
        Interaction.track_id,
        Interaction.play_count,
        Interaction.like_score,
        Interaction.skip_count,
    ).where(Interaction.user_id == _UID),
)


async def load_user(session: AsyncSession, user_id: int) -> RawUser | None:
    """One user's PMS tracks and interactions in one query; None for an unknown user."""
    # Core execution on the session's connection: the ORM layer adds ~half again per query.
    connection = await session.connection()
    rows = (await connection.execute(_USER, {"user_id": user_id})).all()
    if not rows:
        return None
    raw = RawUser()
    raw.pms = [track for kind, track, *_ in rows if kind == "p"]
    raw.interactions = {
        track: (int(plays), int(likes), int(skips))
        for kind, track, plays, likes, skips in rows
        if kind == "i"
    }
    return raw


async def load_all_users(session: AsyncSession) -> dict[int, RawUser]:
    """Every user with PMS tracks or interactions (streamed in pages: requests run between)."""
    users: dict[int, RawUser] = defaultdict(RawUser)
    pms = sa.select(UserTrack.user_id, UserTrack.track_id)
    async for page in stream_pages(session, pms):
        for uid, track_id in page:
            users[int(uid)].pms.append(track_id)
    inter = sa.select(
        Interaction.user_id,
        Interaction.track_id,
        Interaction.play_count,
        Interaction.like_score,
        Interaction.skip_count,
    )
    async for page in stream_pages(session, inter):
        for uid, t, p, like, s in page:
            users[int(uid)].interactions[t] = (int(p), int(like), int(s))
    return dict(users)


async def catalog_fingerprint(session: AsyncSession) -> str:
    """Changes whenever a track is added, removed or updated (one aggregate query)."""
    count, latest = await catalog_version(session)
    return f"{count}|{latest}"


async def activity_fingerprint(session: AsyncSession) -> str:
    """Changes whenever PMS tracks or interactions change: the latest write of each and the
    users' count and latest update (indexed, to the microsecond: a few index dives, not scans
    of tables of millions of rows). An insert or update moves a latest time; a library replace
    that only removes tracks moves its user's updated_at; an erasure moves the user count."""
    pms = (await session.execute(sa.select(sa.func.max(UserTrack.added_at)))).scalar()
    inter = (await session.execute(sa.select(sa.func.max(Interaction.updated_at)))).scalar()
    users = (await session.execute(sa.select(sa.func.count(), sa.func.max(User.updated_at)))).one()
    return f"{_stamp(pms)}|{_stamp(inter)}|{users[0]}|{_stamp(users[1])}"


def _stamp(value: datetime | str | None) -> str:
    return "" if value is None else str(value)


async def record_model(
    session: AsyncSession,
    *,
    kind: str,
    owner_id: int | None,
    version: str,
    path: str,
    sha256: str,
    rows: int,
    metrics: dict[str, float],
) -> None:
    """A row in the model registry for a published artifact."""
    session.add(
        ModelRecord(
            family="M3",
            kind=kind,
            owner_id=owner_id,
            version=version,
            path=path,
            sha256=sha256,
            rows=rows,
            metrics=metrics,
        )
    )
    await session.commit()
