"""llm routes (thin): validate, call the domain, return schemas."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from musicspace_llm import service
from musicspace_llm.schemas import (
    IndexStatus,
    Intent,
    Range,
    RecommendRequest,
    RecommendResponse,
    SearchRequest,
    SearchResponse,
    SyncResponse,
    TrackResult,
)
from musicspace_shared.auth import AdminOnly, Caller
from musicspace_shared.features import FEATURES
from musicspace_shared.recommendation_ids import new_id
from musicspace_shared.web import SessionDep, runtime_dependency

router = APIRouter(prefix="/api/llm", tags=["llm"])


RuntimeDep = Annotated[service.Runtime, Depends(runtime_dependency(service.Runtime))]


def _items(result: service.Result) -> list[TrackResult]:
    frame = result.index.frame
    items = []
    for match, reason, score in zip(
        result.matches, result.reasons, result.unit_scores(), strict=True
    ):
        r = match.row
        features = {
            n: round(float(frame.features[r, j]), 4)
            for j, n in enumerate(FEATURES)
            if not math.isnan(frame.features[r, j])
        }
        items.append(
            TrackResult(
                track_id=frame.track_ids[r],
                title=frame.titles[r] or None,
                artist=frame.artists[r] or None,
                album=frame.albums[r] or None,
                genre=frame.genres[r] or None,
                subgenre=frame.subgenres[r] or None,
                score=round(score, 4),
                reason=reason,
                matched=match.matched,
                closest=match.closest,
                audio_features=features,
            )
        )
    return items


def _intent(result: service.Result) -> Intent:
    i = result.intent
    r = lambda d: {str(k): round(float(v), 3) for k, v in d.items()}  # noqa: E731
    return Intent(
        subgenres=r(i.subgenres),
        genres=r(i.genres),
        features=r(i.features),
        eras=r(i.eras),
        ranges={name: Range(min=low, max=high) for name, (low, high) in i.ranges.items()},
        years=Range(min=i.years[0], max=i.years[1]) if i.years else None,
        artist=i.artist,
        similar_to=i.similar_to,
        named=i.named or None,
        parser=i.parser,
    )


@router.post("/search", response_model=SearchResponse, summary="Natural-language track search")
async def search(
    body: SearchRequest, request: Request, runtime: RuntimeDep, _caller: Caller
) -> SearchResponse:
    manager = runtime.manager
    result = await service.search(
        manager=manager,
        query=body.query,
        limit=body.limit,
        filters=service.search_filters(body.filters),
        writer=runtime.reason_writer,
        reader=runtime.query_reader,
    )
    request.app.state.metrics.count("searches")
    return SearchResponse(
        query=body.query,
        provider=manager.embedder.provider,
        model=manager.embedder.model,
        intent=_intent(result),
        items=_items(result),
    )


@router.post(
    "/recommend", response_model=RecommendResponse, summary="Search blended with the user's profile"
)
async def recommend(
    body: RecommendRequest,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    caller: Caller,
) -> RecommendResponse:
    caller.act_for(body.user_id)
    manager = runtime.manager
    result = await service.recommend(
        manager=manager,
        session=session,
        request=body,
        writer=runtime.reason_writer,
        reader=runtime.query_reader,
    )
    request.app.state.metrics.count("recommendations")
    return RecommendResponse(
        query=body.query,
        provider=manager.embedder.provider,
        model=manager.embedder.model,
        intent=_intent(result),
        items=_items(result),
        user_id=body.user_id,
        profile_tracks=result.profile_tracks,
        recommendation_id=new_id("llm"),
        next_cursor=result.next_cursor,
    )


@router.get("/index/status", response_model=IndexStatus, summary="Index state, size and last sync")
async def index_status(runtime: RuntimeDep, _caller: Caller) -> IndexStatus:
    return IndexStatus(**runtime.manager.status())


@router.post(
    "/index/sync",
    response_model=SyncResponse,
    status_code=202,
    summary="Ask for a sync of the tracks changed since the last one (admin); answers at once",
)
async def index_sync(runtime: RuntimeDep, _admin: AdminOnly) -> SyncResponse:
    return SyncResponse(**runtime.manager.request_sync())
