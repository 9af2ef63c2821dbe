"""The llm service's DB queries: catalog rows for the index, a user's tracks and dislikes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from musicspace_llm.documents import decade
from musicspace_shared.catalog import (
    TrackFrame,
    load_interactions,
    load_tracks,
    load_user_tracks,
    user_exists,
)


@dataclass
class CatalogRows:
    frame: TrackFrame
    decades: np.ndarray
    watermark: datetime | None  # the newest updated_at among these rows


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def load_catalog(session: AsyncSession, *, since: datetime | None = None) -> CatalogRows:
    """All tracks, or those updated at/after `since` (the sync watermark), ordered by id.

    >= (not >): rows written in the same clock tick as the watermark are not lost; unchanged
    documents are skipped by their hash, so re-reading them is cheap.
    """
    frame = await load_tracks(session, updated_since=since, with_updated_at=True)
    decades = np.array([decade(d) or 0 for d in frame.release_dates], dtype=np.int64)
    watermark = max((_aware(u) for u in frame.updated_at if u is not None), default=None)
    return CatalogRows(frame, decades, watermark)


async def user_context(session: AsyncSession, *, user_id: int) -> tuple[list[str], set[str]] | None:
    """(PMS track ids, disliked track ids) of a user, or None when the user does not exist."""
    if not await user_exists(session, user_id):
        return None
    owned = (await load_user_tracks(session, user_id)).get(user_id, [])
    interactions = (await load_interactions(session, user_id)).get(user_id)
    return owned, (interactions.disliked if interactions else set())
