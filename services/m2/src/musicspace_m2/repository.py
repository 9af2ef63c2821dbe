"""m2's queries: tracks as m2 inputs, catalog state, a user's tracks and reactions."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from musicspace_m2.text_features import INPUT_COLUMNS, TrackInputs, inputs_from_columns
from musicspace_shared.catalog import (
    load_interactions,
    load_user_tracks,
    stream_pages,
    user_exists,
)
from musicspace_shared.db.tables import Track
from musicspace_shared.features import FEATURES

_INPUT_NAMES = ("track_id", *INPUT_COLUMNS)
_NAMES = (*_INPUT_NAMES, "features_source")
_COLUMNS = tuple(getattr(Track, name) for name in (*_NAMES, *FEATURES))
_INPUT_COLUMNS = _COLUMNS[: len(_INPUT_NAMES)]  # _NAMES starts with _INPUT_NAMES


@dataclass
class KnownInputs:
    """Tracks' ids and their m2 inputs, as the DB has them."""

    track_ids: list[str]
    inputs: TrackInputs

    def __len__(self) -> int:
        return len(self.track_ids)


@dataclass
class TrackTable(KnownInputs):
    """Tracks as m2 sees them: ids, inputs, features (NaN when none) and their source."""

    features: np.ndarray
    sources: list[str | None]


def _by_name(rows: list[sa.Row], names: tuple[str, ...]) -> dict[str, list[object]]:
    """The first len(names) columns of `rows`, one list per name."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    return {name: list(column) for name, column in zip(names, columns, strict=False)}


def _known(named: dict[str, list[object]]) -> KnownInputs:
    inputs = inputs_from_columns(**{name: named[name] for name in INPUT_COLUMNS})
    return KnownInputs(named["track_id"], inputs)  # type: ignore[arg-type]


def _table(rows: list[sa.Row]) -> TrackTable:
    named = _by_name(rows, _NAMES)
    known = _known(named)
    # None -> NaN by the float conversion itself (as musicspace_shared.catalog reads tracks).
    feats = np.array([row[len(_NAMES) :] for row in rows], dtype=np.float64).reshape(
        len(rows), len(FEATURES)
    )
    return TrackTable(known.track_ids, known.inputs, feats, named["features_source"])  # type: ignore[arg-type]


async def load_track_table(session: AsyncSession, *, measured_only: bool = False) -> TrackTable:
    """Tracks ordered by id: all, or the measured ones."""
    query = sa.select(*_COLUMNS).order_by(Track.track_id)
    if measured_only:
        query = query.where(Track.features_source == "measured")
    # Streamed in pages and converted in a thread: a refresh leaves the event loop to requests.
    rows = [row async for page in stream_pages(session, query) for row in page]
    return await asyncio.to_thread(_table, rows)


async def load_inputs(session: AsyncSession, track_ids: list[str]) -> KnownInputs:
    """The given tracks' ids and inputs, ordered by id: all predict-audio reads (no features)."""
    query = sa.select(*_INPUT_COLUMNS).where(Track.track_id.in_(track_ids)).order_by(Track.track_id)
    rows = list((await (await session.connection()).execute(query)).all())
    return _known(_by_name(rows, _INPUT_NAMES))


@dataclass
class UserTaste:
    owned: list[str]
    liked: set[str]
    disliked: set[str]


async def load_user_taste(session: AsyncSession, user_id: int) -> UserTaste | None:
    """The user's PMS tracks, likes and dislikes; None when the user does not exist."""
    if not await user_exists(session, user_id):
        return None
    owned = (await load_user_tracks(session, user_id)).get(user_id, [])
    reactions = (await load_interactions(session, user_id)).get(user_id)
    return UserTaste(
        owned=owned,
        liked=reactions.liked if reactions else set(),
        disliked=reactions.disliked if reactions else set(),
    )
