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
from musicspace_shared.row_lookup import RowLookup, byte_spans, fixed_width


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

    async def pms() -> list[_Rows]:
        await _allow_long_concat(session)
        return [rows async for rows in _grouped(session, lookup, UserTrack, UserTrack.track_id)]

    async def interactions() -> list[_Rows]:
        reader = other or session
        await _allow_long_concat(reader)
        counts = (Interaction.play_count, Interaction.like_score, Interaction.skip_count)
        return [
            rows
            async for rows in _grouped(reader, lookup, Interaction, Interaction.track_id, *counts)
        ]

    if other is None:
        owned, acted = await pms(), await interactions()
    else:
        owned, acted = await asyncio.gather(pms(), interactions())
    return Activity(
        _joined([part.users for part in owned]),
        _joined([part.rows for part in owned]),
        _joined([part.users for part in acted]),
        _joined([part.rows for part in acted]),
        *(_joined([part.numbers[i] for part in acted]) for i in range(3)),
    )


async def _allow_long_concat(session: AsyncSession) -> None:
    """MariaDB cuts a GROUP_CONCAT at 1 MB by default (a user with ~30k interactions): lift
    that for this session (a result row is still bounded by max_allowed_packet; a cut user is
    read again row by row, _grouped)."""
    if session.get_bind().dialect.name in ("mysql", "mariadb"):
        await session.execute(sa.text("SET SESSION group_concat_max_len = 1073741824"))


@dataclass
class _Rows:
    """A page of users' rows: each row's user, its track's catalog row (-1: none), and its
    other columns as integers (one array per column)."""

    users: np.ndarray
    rows: np.ndarray
    numbers: np.ndarray


async def _grouped(
    session: AsyncSession, lookup: RowLookup, table: Any, track: Any, *numbers: Any
) -> AsyncIterator[_Rows]:
    """Every user's rows of `table` (their `track` ids and integer `numbers`), a page of users
    at a time, a user's rows together. The database joins a user's rows into one text per
    user; a user whose text it cut short (its length limit) is read again row by row, in a
    last page."""
    row = track
    for column in numbers:
        row = row + _SEP + sa.cast(column, sa.String)
    query = sa.select(table.user_id, sa.func.count(), sa.func.aggregate_strings(row, _SEP))
    width = 1 + len(numbers)
    cut: list[int] = []
    async for page in stream_pages(session, query.group_by(table.user_id)):
        users, counts, texts = [], [], []
        for user_id, count, text in page:
            text = text if isinstance(text, bytes) else text.encode()
            if text.count(_SEP_BYTE) + 1 == count * width:
                users.append(user_id)
                counts.append(count)
                texts.append(text)
            else:
                cut.append(user_id)
        yield _split(lookup, users, counts, texts, width)
    if cut:  # after the stream: its connection answers one query at a time
        rows = (
            await session.execute(
                sa.select(table.user_id, track, *numbers).where(table.user_id.in_(cut))
            )
        ).all()
        texts = [_SEP.join(str(v) for v in r[1:]).encode() for r in rows]
        yield _split(lookup, [r[0] for r in rows], [1] * len(rows), texts, width)


def _split(
    lookup: RowLookup, users: list[int], counts: list[int], texts: list[bytes], width: int
) -> _Rows:
    """The rows of users' joined texts (`counts[i]` rows of `width` values each in texts[i]),
    parsed in C: ids cut out of the bytes in place (no str per row), numbers by np.fromstring
    (a str per row, and a Python list of 16.8M of them at 1M tracks, were 10 s of m3's start)."""
    data = np.frombuffer(_SEP_BYTE.join(texts), dtype=np.uint8)
    ends = np.append(np.flatnonzero(data == _SEP_BYTE[0]), len(data)) if texts else data[:0]
    starts = np.append(0, ends[:-1] + 1) if texts else ends
    ids = slice(0, None, width)
    found = lookup.rows(fixed_width(data, starts[ids], ends[ids], lookup.width))
    if width == 1:
        values = np.zeros((0, len(found)), dtype=np.int64)
    else:  # the ids blanked out, the numbers are the rest
        longest = int((ends[ids] - starts[ids]).max(initial=0))
        positions, inside = byte_spans(starts[ids], ends[ids], longest)
        text = data.copy()
        text[positions[inside]] = _SEP_BYTE[0]
        values = np.fromstring(text.tobytes(), dtype=np.int64, sep=_SEP)
        values = values.reshape(-1, width - 1).T
    return _Rows(np.repeat(np.array(users, dtype=np.int64), counts), found, values)


_SEP = " "  # no track id holds one (TRACK_ID_PATTERN), nor does a number
_SEP_BYTE = _SEP.encode()


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
