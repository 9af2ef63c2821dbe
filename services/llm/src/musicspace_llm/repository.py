"""The llm service's DB queries: catalog rows for the index, a user's tracks and dislikes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from musicspace_llm.documents import decade
from musicspace_shared.catalog import (
    TrackFrame,
    concat_frames,
    load_interactions,
    load_tracks,
    load_user_tracks,
    stream_pages,
    user_exists,
)
from musicspace_shared.db.tables import Track
from musicspace_shared.features import FEATURES


@dataclass
class CatalogRows:
    frame: TrackFrame
    decades: np.ndarray
    watermark: datetime | None  # the newest updated_at among these rows

    def stamps(self) -> list[datetime | None]:
        """Each row's updated_at, UTC-aware (None when the load did not ask for them)."""
        return [_aware(u) for u in self.frame.updated_at] or [None] * len(self.frame)

    @staticmethod
    def concat(parts: list[CatalogRows]) -> CatalogRows:
        marks = [p.watermark for p in parts if p.watermark is not None]
        return CatalogRows(
            concat_frames([p.frame for p in parts]),
            np.concatenate([p.decades for p in parts]),
            max(marks) if marks else None,
        )


def row_record(frame: TrackFrame, i: int) -> str:
    """Track i's row as JSON, kept beside its vector in Chroma (metadata "row"), so a restart
    rebuilds the index from the collection instead of re-reading the catalog."""
    popularity = frame.popularity[i]
    updated = _aware(frame.updated_at[i]) if frame.updated_at else None
    return json.dumps(
        [
            frame.titles[i],
            frame.artists[i],
            frame.albums[i],
            frame.genres[i],
            frame.subgenres[i],
            None if np.isnan(popularity) else float(popularity),
            [None if np.isnan(x) else float(x) for x in frame.features[i]],
            frame.features_source[i] if frame.features_source else None,
            frame.release_dates[i] if frame.release_dates else None,
            updated.isoformat() if updated else None,
        ],
        ensure_ascii=False,
    )


def rows_from_records(track_ids: list[str], records: list[str]) -> CatalogRows:
    """The rows row_record wrote, in the order given."""
    parsed = [json.loads(r) for r in records]
    nan = float("nan")
    frame = TrackFrame(
        track_ids=list(track_ids),
        titles=[r[0] for r in parsed],
        artists=[r[1] for r in parsed],
        albums=[r[2] for r in parsed],
        genres=[r[3] for r in parsed],
        subgenres=[r[4] for r in parsed],
        popularity=np.array([nan if r[5] is None else r[5] for r in parsed], dtype=np.float64),
        features=np.array(
            [[nan if x is None else x for x in r[6]] for r in parsed], dtype=np.float64
        ).reshape(len(parsed), len(FEATURES)),
        features_source=[r[7] for r in parsed],
        release_dates=[r[8] for r in parsed],
        updated_at=[datetime.fromisoformat(r[9]) if r[9] else None for r in parsed],
    )
    decades = np.array([decade(d) or 0 for d in frame.release_dates], dtype=np.int64)
    watermark = max((u for u in frame.updated_at if u is not None), default=None)
    return CatalogRows(frame, decades, watermark)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def load_catalog(
    session: AsyncSession, *, since: datetime | None = None, track_ids: list[str] | None = None
) -> CatalogRows:
    """All tracks, those updated at/after `since`, or the given ids; ordered by id."""
    frame = await load_tracks(session, track_ids, updated_since=since, with_updated_at=True)
    decades = np.array([decade(d) or 0 for d in frame.release_dates], dtype=np.int64)
    watermark = max((_aware(u) for u in frame.updated_at if u is not None), default=None)
    return CatalogRows(frame, decades, watermark)


async def moved_since(
    session: AsyncSession, *, since: datetime | None, stamps: dict[str, datetime]
) -> tuple[list[str], int]:
    """(ids of tracks updated at/after `since` whose updated_at is not the one in `stamps`,
    keys scanned). Only the two key columns are read (covered by ix_track_updated_at), as a
    stream of pages, so an unchanged catalog costs next to nothing."""
    query = sa.select(Track.track_id, Track.updated_at)
    if since is not None:
        query = query.where(Track.updated_at >= since)
    moved: list[str] = []
    scanned = 0
    async for rows in stream_pages(session, query):
        scanned += len(rows)
        moved.extend(t for t, u in rows if stamps.get(t) != _aware(u))
    return moved, scanned


async def user_context(session: AsyncSession, *, user_id: int) -> tuple[list[str], set[str]] | None:
    """(PMS track ids, disliked track ids) of a user, or None when the user does not exist."""
    if not await user_exists(session, user_id):
        return None
    owned = (await load_user_tracks(session, user_id)).get(user_id, [])
    interactions = (await load_interactions(session, user_id)).get(user_id)
    return owned, (interactions.disliked if interactions else set())
