"""m1 routes (thin): validate, call the domain, return schemas."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from musicspace_m1 import service
from musicspace_m1.runtime import Runtime
from musicspace_m1.schemas import (
    RecommendRequest,
    RecommendResponse,
    StatusResponse,
    TrainRequest,
    TrainResponse,
)
from musicspace_shared.auth import Caller
from musicspace_shared.ids import UserIdPath
from musicspace_shared.web import SessionDep, runtime_dependency, train_in_queue

router = APIRouter(prefix="/api/m1", tags=["m1"])


RuntimeDep = Annotated[Runtime, Depends(runtime_dependency(Runtime))]


@router.post(
    "/train",
    response_model=TrainResponse,
    summary="Train the user's personal model (or profile fallback)",
)
async def train(
    body: TrainRequest, runtime: RuntimeDep, request: Request, caller: Caller
) -> TrainResponse:
    caller.act_for(body.user_id)
    result = await train_in_queue(
        request,
        body.user_id,
        lambda session: service.train_user(session=session, runtime=runtime, user_id=body.user_id),
    )
    request.app.state.metrics.count(f"train_{result.model}")
    return TrainResponse(**asdict(result))


@router.post(
    "/recommend", response_model=RecommendResponse, summary="Hybrid recommendations for a user"
)
async def recommend(
    body: RecommendRequest,
    session: SessionDep,
    runtime: RuntimeDep,
    request: Request,
    caller: Caller,
) -> Response:
    caller.act_for(body.user_id)
    result = await service.recommend(session=session, runtime=runtime, request=body)
    request.app.state.metrics.count(f"recommend_{result.model}")
    # The domain returns the body it rendered from RecommendResponse (and cached).
    return Response(content=result.body, media_type="application/json")


@router.get(
    "/status/{user_id}",
    response_model=StatusResponse,
    summary="The user's model: trained, fallback, last use",
)
async def status(
    user_id: UserIdPath, session: SessionDep, runtime: RuntimeDep, caller: Caller
) -> StatusResponse:
    caller.act_for(user_id)
    result = await service.status(session=session, runtime=runtime, user_id=user_id)
    return StatusResponse(**asdict(result))
