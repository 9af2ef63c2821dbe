"""llm routes (thin): validate, call the domain, return its rendered answer or schemas."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from musicspace_llm import render, service
from musicspace_llm.schemas import (
    IndexStatus,
    RecommendRequest,
    RecommendResponse,
    SearchRequest,
    SearchResponse,
    SyncResponse,
)
from musicspace_shared.auth import AdminOnly, Caller
from musicspace_shared.recommendation_ids import new_id
from musicspace_shared.web import SessionDep, runtime_dependency

router = APIRouter(prefix="/api/llm", tags=["llm"])


def _json(content: bytes) -> Response:
    """An answer rendered by render.py (the route's response_model documents its fields)."""
    return Response(content=content, media_type="application/json")


RuntimeDep = Annotated[service.Runtime, Depends(runtime_dependency(service.Runtime))]


@router.post("/search", response_model=SearchResponse, summary="Natural-language track search")
async def search(
    body: SearchRequest, request: Request, runtime: RuntimeDep, _caller: Caller
) -> Response:
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
    return _json(
        render.body(
            result,
            query=body.query,
            provider=manager.embedder.provider,
            model=manager.embedder.model,
        )
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
) -> Response:
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
    return _json(
        render.body(
            result,
            query=body.query,
            provider=manager.embedder.provider,
            model=manager.embedder.model,
            source="llm",
            user_id=body.user_id,
            profile_tracks=result.profile_tracks,
            recommendation_id=new_id("llm"),
            next_cursor=result.next_cursor,
        )
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
