"""m3 routes (thin): validate, call the domain, return schemas."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from musicspace_m3.events import Event, count_feedback, record_events
from musicspace_m3.schemas import (
    EventOutcome,
    EventsRequest,
    EventsResponse,
    RecommendRequest,
    RecommendResponse,
    TrainRequest,
    TrainResponse,
)
from musicspace_m3.service import Recommender
from musicspace_shared.auth import Caller
from musicspace_shared.web import SessionDep, runtime_dependency, train_in_queue

router = APIRouter(prefix="/api/m3", tags=["m3"])


RecommenderDep = Annotated[Recommender, Depends(runtime_dependency(Recommender))]


@router.post(
    "/recommend", response_model=RecommendResponse, summary="Ranked tracks for a user, with drivers"
)
async def recommend(
    body: RecommendRequest, session: SessionDep, m3: RecommenderDep, caller: Caller
) -> Response:
    caller.act_for(body.user_id)
    body_bytes = await m3.recommend(session=session, request=body)
    # The domain renders the body (RecommendResponse's fields) and caches the page without its id.
    return Response(content=body_bytes, media_type="application/json")


@router.post(
    "/train", response_model=TrainResponse, summary="Fine-tune the global ranker for one user"
)
async def train(
    body: TrainRequest, m3: RecommenderDep, request: Request, caller: Caller
) -> TrainResponse:
    caller.act_for(body.user_id)
    r = await train_in_queue(
        request, body.user_id, lambda session: m3.train_user(session=session, user_id=body.user_id)
    )
    return TrainResponse(
        user_id=body.user_id,
        model="personal" if r.personal else "global",
        reason=r.reason,
        positives_used=r.positives,
        rows=r.rows,
        version=r.version,
        base_version=r.base_version,
        trained_at=r.trained_at,
        metrics=r.metrics,
    )


@router.post(
    "/events",
    response_model=EventsResponse,
    summary="Record plays, likes, dislikes, unlikes, skips, clicks and impressions "
    "(idempotent by event_id)",
)
async def events(
    body: EventsRequest, request: Request, session: SessionDep, caller: Caller
) -> EventsResponse:
    for event in body.events:
        caller.act_for(event.user_id)
    batch = [
        Event(e.event_id, e.user_id, e.track_id, e.kind, e.occurred_at, e.recommendation_id)
        for e in body.events
    ]
    results = await record_events(session=session, events=batch)
    count_feedback(request.app.state.metrics, batch, results)
    outcomes = [EventOutcome(event_id=r.event_id, status=r.status) for r in results]  # type: ignore[arg-type]
    recorded = sum(r.status == "recorded" for r in results)
    duplicates = sum(r.status == "duplicate" for r in results)
    return EventsResponse(
        received=len(results),
        recorded=recorded,
        duplicates=duplicates,
        rejected=len(results) - recorded - duplicates,
        results=outcomes,
    )
