"""m1 routes (thin): validate, call the domain, return schemas."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from musicspace_m1 import service
from musicspace_m1.runtime import Runtime
from musicspace_m1.schemas import (
    RecommendRequest,
    RecommendResponse,
    StatusResponse,
    TrainRequest,
    TrainResponse,
)
from musicspace_shared.ids import UserIdPath
from musicspace_shared.web import SessionDep

router = APIRouter(prefix="/api/m1", tags=["m1"])


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]


@router.post(
    "/train",
    response_model=TrainResponse,
    summary="Train the user's personal model (or profile fallback)",
)
async def train(
    body: TrainRequest, session: SessionDep, runtime: RuntimeDep, request: Request
) -> TrainResponse:
    result = await service.train_user(session=session, runtime=runtime, user_id=body.user_id)
    request.app.state.metrics.count(f"train_{result.model}")
    return TrainResponse(**asdict(result))


@router.post(
    "/recommend", response_model=RecommendResponse, summary="Hybrid recommendations for a user"
)
async def recommend(
    body: RecommendRequest, session: SessionDep, runtime: RuntimeDep, request: Request
) -> RecommendResponse:
    result = await service.recommend(
        session=session,
        runtime=runtime,
        user_id=body.user_id,
        limit=body.limit,
        exclude_owned=body.exclude_owned,
        max_per_artist=body.max_per_artist,
    )
    request.app.state.metrics.count(f"recommend_{result.model}")
    # from_attributes reads the dataclasses as they are (asdict would deep-copy every item).
    return RecommendResponse.model_validate(result, from_attributes=True)


@router.get(
    "/status/{user_id}",
    response_model=StatusResponse,
    summary="The user's model: trained, fallback, last use",
)
async def status(user_id: UserIdPath, session: SessionDep, runtime: RuntimeDep) -> StatusResponse:
    result = await service.status(session=session, runtime=runtime, user_id=user_id)
    return StatusResponse(**asdict(result))
