"""m2 routes (thin): validate, call the domain, return schemas."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from musicspace_m2 import service
from musicspace_m2.runtime import Runtime
from musicspace_m2.schemas import (
    PredictRequest,
    PredictResponse,
    RecommendRequest,
    RecommendResponse,
    SimilarResponse,
)
from musicspace_shared.auth import Caller
from musicspace_shared.ids import TrackIdPath
from musicspace_shared.inputs import DecimalText
from musicspace_shared.web import SessionDep

router = APIRouter(prefix="/api/m2", tags=["m2"])


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


@router.post(
    "/predict-audio",
    response_model=PredictResponse,
    summary="Predict the 9 audio features from text",
)
async def predict_audio(
    body: PredictRequest, request: Request, session: SessionDep, _caller: Caller
) -> Response:
    # The domain returns the serialised body: letting FastAPI re-validate 1,000 results against
    # response_model cost about as much as predicting them (the schema still documents the route).
    body_bytes = await service.predict_audio(
        runtime=_runtime(request), session=session, request=body
    )
    return Response(content=body_bytes, media_type="application/json")


@router.get(
    "/similar/{track_id}",
    response_model=SimilarResponse,
    summary="Nearest tracks by text and audio features",
)
async def similar(
    track_id: TrackIdPath,
    request: Request,
    session: SessionDep,
    _caller: Caller,
    limit: Annotated[int, DecimalText, Query(ge=1, le=200)] = 20,
) -> SimilarResponse:
    return await service.similar_tracks(
        runtime=_runtime(request), session=session, track_id=track_id, limit=limit
    )


@router.post(
    "/recommend", response_model=RecommendResponse, summary="Per-user SVM content recommendations"
)
async def recommend(
    body: RecommendRequest, request: Request, session: SessionDep, caller: Caller
) -> RecommendResponse:
    caller.act_for(body.user_id)
    return await service.recommend(
        runtime=_runtime(request), session=session, user_id=body.user_id, limit=body.limit
    )
