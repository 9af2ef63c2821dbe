"""The llm service's DB queries: catalog rows for the index, a user's tracks and dislikes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from musicspace_llm.documents import decade
from musicspace_shared.catalog import TrackFrame, load_interactions, load_user_tracks, user_exists
from musicspace_shared.db.tables import Track
from musicspace_shared.features import FEATURES


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
    """All tracks, or those updated at/after `since` (the sync watermark), ordered by id."""
    columns = [
        Track.track_id,
        Track.title,
        Track.artist,
        Track.album,
        Track.genre,
        Track.subgenre,
        Track.popularity,
        Track.release_date,
        Track.updated_at,
        Track.features_source,
        *(getattr(Track, name) for name in FEATURES),
    ]
    query = sa.select(*columns).order_by(Track.track_id)
    if since is not None:
        # >= (not >): rows written in the same clock tick as the watermark are not lost;
        # unchanged documents are skipped by their hash, so re-reading them is cheap.
        query = query.where(Track.updated_at >= since)
    rows = (await session.execute(query)).all()
    n = len(rows)
    feats = np.array(
        [
            [np.nan if r[10 + j] is None else float(r[10 + j]) for j in range(len(FEATURES))]
            for r in rows
        ],
        dtype=np.float64,
    ).reshape(n, len(FEATURES))
    frame = TrackFrame(
        track_ids=[r[0] for r in rows],
        titles=[r[1] or "" for r in rows],
        artists=[r[2] or "" for r in rows],
        albums=[r[3] or "" for r in rows],
        genres=[r[4] or "" for r in rows],
        subgenres=[r[5] or "" for r in rows],
        popularity=np.array([np.nan if r[6] is None else r[6] for r in rows], dtype=np.float64),
        features=feats,
        features_source=[r[9] for r in rows],
    )
    decades = np.array([decade(r[7]) or 0 for r in rows], dtype=np.int64)
    watermark = max((_aware(r[8]) for r in rows if r[8] is not None), default=None)
    return CatalogRows(frame, decades, watermark)


async def user_context(session: AsyncSession, *, user_id: int) -> tuple[list[str], set[str]] | None:
    """(PMS track ids, disliked track ids) of a user, or None when the user does not exist."""
    if not await user_exists(session, user_id):
        return None
    owned = (await load_user_tracks(session, user_id)).get(user_id, [])
    interactions = (await load_interactions(session, user_id)).get(user_id)
    return owned, (interactions.disliked if interactions else set())
