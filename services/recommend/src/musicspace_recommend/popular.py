"""What users with no data get: popular and newly added tracks per genre, cached briefly.

Two lists from the catalog: each genre's most popular tracks (track.popularity) and its newest
(track.created_at), each interleaved over the genres (every genre's first, then every genre's
second, ...: a new user sees the whole range of genres, not the top genre only). The two are
fused like the models' rankings (musicspace_recommend.fusion), so the answer's scores mean
the same. Rebuilt from the DB at most every RECOMMEND_POPULAR_CACHE_S; one rebuild at a time.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from musicspace_recommend import repository
from musicspace_recommend.fusion import Fused, fuse
from musicspace_recommend.repository import GenreTrack


@dataclass(frozen=True)
class ColdStart:
    items: list[Fused]
    tracks: dict[str, GenreTrack]  # track id -> title, artist, genre
    reasons: dict[str, str]  # track id -> "popular in rock" / "new in rock"


def build(popular: list[GenreTrack], new: list[GenreTrack], k: float) -> ColdStart:
    """Fuse the two interleaved lists (each already ordered by rank within genre, then genre)."""
    fused = fuse({"popular": [t.track_id for t in popular], "new": [t.track_id for t in new]}, k=k)
    tracks = {t.track_id: t for t in (*new, *popular)}
    reasons = {}
    for item in fused:
        kind = "popular" if "popular" in item.ranks else "new"
        reasons[item.track_id] = f"{kind} in {tracks[item.track_id].genre or 'all genres'}"
    return ColdStart(fused, tracks, reasons)


class PopularCache:
    def __init__(self, *, ttl_s: float, per_genre: int, new_per_genre: int, k: float) -> None:
        self.ttl_s = ttl_s
        self.per_genre = per_genre
        self.new_per_genre = new_per_genre
        self.k = k
        self._value: ColdStart | None = None
        self._built_at = 0.0
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        return self._value is not None and time.monotonic() - self._built_at < self.ttl_s

    async def get(self, session: AsyncSession) -> ColdStart:
        if self._fresh():
            assert self._value is not None
            return self._value
        async with self._lock:
            if not self._fresh():
                popular = await repository.popular_per_genre(session, self.per_genre)
                new = (
                    await repository.new_per_genre(session, self.new_per_genre)
                    if self.new_per_genre
                    else []
                )
                self._value = build(popular, new, self.k)
                self._built_at = time.monotonic()
        assert self._value is not None
        return self._value
