"""Search and recommendations: understand the query, rank the index, explain each result."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from musicspace_llm.gemini_query import GeminiQueryReader
from musicspace_llm.index import TrackIndex
from musicspace_llm.manager import IndexManager
from musicspace_llm.profile import build_profile, profile_bonus
from musicspace_llm.query import Ranked, embed_texts, prepare, rank
from musicspace_llm.reasons import GeminiReasons, compose_reason, track_facts
from musicspace_llm.repository import user_context
from musicspace_llm.schemas import RecommendRequest
from musicspace_llm.search import Match, SearchFilters
from musicspace_llm.understanding import QueryIntent
from musicspace_shared import selection
from musicspace_shared.errors import InvalidInput, NotFound
from musicspace_shared.recommend import TrackFilters


@dataclass
class Runtime:
    """What the llm lifespan builds: the index manager and the optional Gemini helpers."""

    manager: IndexManager
    reason_writer: GeminiReasons | None = None
    query_reader: GeminiQueryReader | None = None


@dataclass
class Result:
    index: TrackIndex
    intent: QueryIntent
    matches: list[Match]
    reasons: list[str]
    profile_tracks: int = 0
    best: float = 0.0  # the highest fused score of the ranking (scores are shown relative to it)
    next_cursor: str | None = None

    def unit_scores(self) -> list[float]:
        """Each match's score relative to the best result's, 0..1 (order kept)."""
        if self.best <= 0:
            return [0.0] * len(self.matches)
        return [min(max(m.score / self.best, 0.0), 1.0) for m in self.matches]


def _best(matches: list[Match]) -> float:
    """The highest fused score of a ranking (the `closest` that follow the matches may exceed
    the matches' own: they are nearer the query but outside a range it names)."""
    return max((m.score for m in matches), default=0.0)


def search_filters(filters: TrackFilters | None) -> SearchFilters | None:
    """The ranking's hard filters for the request's (genre, subgenre, years, feature ranges)."""
    if filters is None:
        return None
    return SearchFilters(
        genres=[filters.genre] if filters.genre else [],
        subgenres=[filters.subgenre] if filters.subgenre else [],
        ranges=filters.ranges(),
        years=filters.years(),
    )


async def _rank(
    manager: IndexManager,
    index: TrackIndex,
    query: str,
    *,
    limit: int,
    filters: SearchFilters | None = None,
    exclude: set[str] | None = None,
    extra: np.ndarray | None = None,
    reader: GeminiQueryReader | None = None,
) -> Ranked:
    """Prepare, embed (while Gemini reads the query, when configured), then rank.

    The ranking runs off the event loop, in the manager's CPU pool; so does reading the
    query's text while the name indexes are still being built (it waits for them). Once they
    are, that reading is a fraction of a millisecond: a thread hop would cost about as much.
    """
    understanding = manager.require()[1]
    if index.names_ready:
        prepared = prepare(query, index)
    else:
        prepared = await manager.cpu.run(prepare, query, index)
    embedding = manager.embedder.embed_queries(embed_texts(understanding, prepared))
    if reader is not None:
        vectors, reading = await asyncio.gather(embedding, reader.read(query))
    else:
        vectors, reading = await embedding, None
    return await manager.cpu.run(
        rank,
        index,
        understanding,
        prepared,
        vectors,
        limit=limit,
        filters=filters,
        exclude=exclude,
        extra=extra,
        reading=reading,
    )


async def _explain(
    index: TrackIndex,
    intent: QueryIntent,
    matches: list[Match],
    *,
    query: str,
    writer: GeminiReasons | None,
    notes: list[str | None] | None = None,
) -> list[str]:
    notes = notes or [None] * len(matches)
    reasons = [
        compose_reason(index, m, intent, profile_note=n)
        for m, n in zip(matches, notes, strict=True)
    ]
    fitting = [m for m in matches if not m.closest]  # the closest say so in their own words
    if writer is not None and fitting:
        written = await writer.write(query, [track_facts(index, m.row) for m in fitting])
        reasons = [
            fallback if m.closest else written.get(index.frame.track_ids[m.row], fallback)
            for m, fallback in zip(matches, reasons, strict=True)
        ]
    return reasons


async def search(
    *,
    manager: IndexManager,
    query: str,
    limit: int,
    filters: SearchFilters | None = None,
    writer: GeminiReasons | None = None,
    reader: GeminiQueryReader | None = None,
) -> Result:
    """The best tracks for a natural-language query, each with a reason."""
    if not query.strip():
        raise InvalidInput("query must not be blank")
    index = manager.require()[0]
    ranked = await _rank(manager, index, query, limit=limit, filters=filters, reader=reader)
    reasons = await _explain(index, ranked.intent, ranked.matches, query=query, writer=writer)
    return Result(index, ranked.intent, ranked.matches, reasons, best=_best(ranked.matches))


# How deep recommend ranks for paging and the per-artist cap: pages end after this many.
DEPTH = 200


async def recommend(
    *,
    manager: IndexManager,
    session: AsyncSession,
    request: RecommendRequest,
    writer: GeminiReasons | None = None,
    reader: GeminiQueryReader | None = None,
) -> Result:
    """Search blended with the user's PMS profile, without their disliked (and, unless asked,
    own) tracks, through the shared post-ranking steps; reasons for the page's tracks only."""
    user_id = request.user_id
    context = await user_context(session, user_id=user_id)
    if context is None:
        raise NotFound(f"user {user_id} not found")
    owned, disliked = context
    index = manager.require()[0]
    profile = build_profile(index, owned)
    excluded = disliked | set(request.exclude) | (set(owned) if request.exclude_owned else set())
    ranked = await _rank(
        manager,
        index,
        request.query,
        limit=DEPTH,
        filters=search_filters(request.filters),
        exclude=excluded,
        extra=profile_bonus(index, profile) if profile.tracks else None,
        reader=reader,
    )
    page = selection.take_page(
        np.array([m.row for m in ranked.matches], dtype=np.int64),
        columns=index.columns,
        request=request,
        source="llm",
        version=(manager.embedder.model, len(index), str(index.watermark)),
    )
    intent, matches = ranked.intent, [ranked.matches[i] for i in page.positions.tolist()]
    notes: list[str | None] = []
    for m in matches:
        share = profile.subgenre_share.get(index.frame.subgenres[m.row], 0.0)
        notes.append(
            f"{share:.0%} of your library is {index.frame.subgenres[m.row]}"
            if share >= 0.05
            else None
        )
    reasons = await _explain(
        index, intent, matches, query=request.query, writer=writer, notes=notes
    )
    return Result(
        index,
        intent,
        matches,
        reasons,
        profile_tracks=profile.tracks,
        best=_best(ranked.matches),
        next_cursor=page.next_cursor,
    )
