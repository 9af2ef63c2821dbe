"""m3's queries: users' tracks and interactions, cheap change fingerprints, model registry rows."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from musicspace_shared.catalog import catalog_version, stream_pages
from musicspace_shared.db.tables import Interaction, ModelRecord, User, UserTrack
from musicspace_shared.row_lookup import RowLookup


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


@dataclass
class Activity:
    """Every PMS track and interaction as arrays, one entry per DB row (catalog row -1: a
    track the catalog does not hold): the snapshot's input without a Python object per row
    (10M interactions as RawUser dicts took ~3 GB)."""

    pms_users: np.ndarray
    pms_rows: np.ndarray
    users: np.ndarray
    rows: np.ndarray
    plays: np.ndarray
    likes: np.ndarray
    skips: np.ndarray


async def load_activity(
    session: AsyncSession, track_ids: Sequence[str], *, other: AsyncSession | None = None
) -> Activity:
    """Activity of every user, PMS rows first then interactions, a user's rows together, with
    the rows of `track_ids` (the catalog's order). Streamed in pages: requests run between.
    With `other` (a second connection), the interactions are read on it at the same time.

    Read as one row per user, the user's rows joined by the database (GROUP_CONCAT): at 100k
    users and 16.8M rows, a Python row per DB row was most of m3's start-up (issue 18)."""
    lookup = RowLookup(track_ids)

    async def pms() -> list[tuple[np.ndarray, ...]]:
        await _allow_long_concat(session)
        return [
            (users, lookup.rows(fields[0]))
            async for users, fields in _grouped(session, UserTrack, UserTrack.track_id)
        ]

    async def interactions() -> list[tuple[np.ndarray, ...]]:
        reader = other or session
        await _allow_long_concat(reader)
        counts = (Interaction.play_count, Interaction.like_score, Interaction.skip_count)
        parts = []
        async for users, fields in _grouped(reader, Interaction, Interaction.track_id, *counts):
            numbers = np.fromstring(
                _SEP.join(v for f in fields[1:] for v in f), dtype=np.int64, sep=_SEP
            )
            parts.append((users, lookup.rows(fields[0]), *numbers.reshape(3, -1)))
        return parts

    if other is None:
        owned, acted = await pms(), await interactions()
    else:
        owned, acted = await asyncio.gather(pms(), interactions())
    return Activity(
        *(_joined([part[i] for part in owned]) for i in range(2)),
        *(_joined([part[i] for part in acted]) for i in range(5)),
    )


async def _allow_long_concat(session: AsyncSession) -> None:
    """MariaDB cuts a GROUP_CONCAT at 1 MB by default (a user with ~30k interactions): lift
    that for this session (a result row is still bounded by max_allowed_packet; a cut user is
    read again row by row, _grouped)."""
    if session.get_bind().dialect.name in ("mysql", "mariadb"):
        await session.execute(sa.text("SET SESSION group_concat_max_len = 1073741824"))


async def _grouped(
    session: AsyncSession, table: Any, *columns: Any
) -> AsyncIterator[tuple[np.ndarray, list[list[str]]]]:
    """Every user's values of `columns` in `table`, a page of users at a time: (each row's
    user, each column's values as text), a user's rows together in the same order in every
    column. The database joins a user's rows into one text per user; a user whose text it cut
    short (its length limit) is read again row by row, in a last page."""
    row = columns[0]
    for column in columns[1:]:
        row = row + _SEP + sa.cast(column, sa.String)
    query = sa.select(table.user_id, sa.func.count(), sa.func.aggregate_strings(row, _SEP))
    cut: list[int] = []
    async for page in stream_pages(session, query.group_by(table.user_id)):
        texts = []
        for user_id, count, text in page:
            text = text.decode() if isinstance(text, bytes) else text
            if text.count(_SEP) + 1 == count * len(columns):
                texts.append((user_id, text))
            else:
                cut.append(user_id)
        yield _split(texts, len(columns))
    if cut:  # after the stream: its connection answers one query at a time
        rows = (
            await session.execute(sa.select(table.user_id, *columns).where(table.user_id.in_(cut)))
        ).all()
        yield _split([(r[0], _SEP.join(str(v) for v in r[1:])) for r in rows], len(columns))


def _split(texts: list[tuple[int, str]], width: int) -> tuple[np.ndarray, list[list[str]]]:
    """(each row's user, each column's values) of users' joined texts."""
    tokens = _SEP.join(text for _, text in texts).split(_SEP) if texts else []
    users = [np.full((text.count(_SEP) + 1) // width, u, dtype=np.int64) for u, text in texts]
    return _joined(users), [tokens[i::width] for i in range(width)]


_SEP = " "  # no track id holds one (TRACK_ID_PATTERN), nor does a number


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


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
