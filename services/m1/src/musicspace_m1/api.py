"""m1 routes (thin): validate, call the domain, return schemas."""

from __future__ import annotations

from fastapi import APIRouter

from musicspace_m1.schemas import RecommendRequest, RecommendResponse, StatusResponse, TrainRequest, TrainResponse
from musicspace_shared.errors import DomainError
from musicspace_shared.ids import UserIdPath
from musicspace_shared.web import SessionDep

router = APIRouter(prefix="/api/m1", tags=["m1"])


class NotImplementedYet(DomainError):
    status = 501
    title = "Not implemented"


@router.post("/train", response_model=TrainResponse)
async def train(body: TrainRequest, session: SessionDep) -> TrainResponse:
    raise NotImplementedYet("m1 training arrives with issue 4")


@router.post("/recommend", response_model=RecommendResponse)
async def recommend(body: RecommendRequest, session: SessionDep) -> RecommendResponse:
    raise NotImplementedYet("m1 recommendations arrive with issue 4")


@router.get("/status/{user_id}", response_model=StatusResponse)
async def status(user_id: UserIdPath, session: SessionDep) -> StatusResponse:
    raise NotImplementedYet("m1 status arrives with issue 4")
