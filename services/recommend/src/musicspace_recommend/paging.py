"""The shared steps after ranking (musicspace_shared.selection), on /api/recommend's fused list.

The fused list (or the popular-and-new list) is the "ranked list" of the shared module: its
rows are read from the catalog (artist, genre, subgenre, release date, audio features) only
when the request has filters or a per-artist cap, so the filters the models applied are
re-checked, `exclude` and the user's own tracks are left out, `max_per_artist` counts from the
top of the list over all pages, and the cursor is the shared one. The cursor's route is
/api/recommend whatever answered, and its version names the source, arm, contributing models
and depth: a cursor issued before a model dropped out or came back reads on at its offset.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from musicspace_recommend import repository
from musicspace_recommend.schemas import RecommendRequest
from musicspace_shared import selection
from musicspace_shared.catalog import label_codes
from musicspace_shared.features import FEATURES

CURSOR_ROUTE = "recommend"


def first_offset(body: RecommendRequest) -> int:
    """The request's offset, checked before any model is asked (422 for a foreign cursor)."""
    return selection.cursor_offset(body, source=CURSOR_ROUTE, version=None)


async def _columns(
    session: AsyncSession, ids: Sequence[str], artists: Sequence[str | None], need_rows: bool
) -> selection.Columns:
    rows = await repository.track_rows(session, list(ids)) if need_rows else {}
    n = len(ids)
    features = np.full((n, len(FEATURES)), np.nan)
    names, genres, subgenres, dates = [], [], [], []
    for i, (track_id, artist) in enumerate(zip(ids, artists, strict=True)):
        row = rows.get(track_id)
        names.append((row.artist if row is not None else artist) or f"?{track_id}")
        genres.append((row.genre if row is not None else None) or "")
        subgenres.append((row.subgenre if row is not None else None) or "")
        dates.append(row.release_date if row is not None else None)
        if row is not None:
            features[i] = [np.nan if v is None else v for v in (getattr(row, f) for f in FEATURES)]
    return selection.Columns(
        track_index={t: i for i, t in enumerate(ids)},
        artists=label_codes(names)[0],
        genres=genres,
        subgenres=subgenres,
        features=features,
        release_dates=dates,
    )


async def page_of(
    session: AsyncSession,
    body: RecommendRequest,
    ids: Sequence[str],
    artists: Sequence[str | None],
    *,
    owned: set[str],
    version: str,
) -> selection.Page:
    """The request's page of `ids` (best first); `owned` left out when exclude_owned."""
    need_rows = body.filters is not None or body.max_per_artist is not None
    columns = await _columns(session, ids, artists, need_rows)
    mine = np.asarray([i for i, t in enumerate(ids) if t in owned], dtype=np.int64)
    mask = selection.allowed(columns, body, owned=mine if owned else None)
    return selection.take_page(
        np.arange(len(ids), dtype=np.int64),
        columns=columns,
        request=body,
        source=CURSOR_ROUTE,
        version=version,
        mask=mask,
    )
