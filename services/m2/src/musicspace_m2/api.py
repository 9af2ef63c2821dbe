"""m2 routes (thin): validate, call the domain, return schemas."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
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
from musicspace_shared.web import SessionDep, runtime_dependency

router = APIRouter(prefix="/api/m2", tags=["m2"])


RuntimeDep = Annotated[Runtime, Depends(runtime_dependency(Runtime))]


@router.post(
    "/predict-audio",
    response_model=PredictResponse,
    summary="Predict the 9 audio features from text",
)
async def predict_audio(
    body: PredictRequest, runtime: RuntimeDep, session: SessionDep, _caller: Caller
) -> Response:
    # The domain returns the serialised body: letting FastAPI re-validate 1,000 results against
    # response_model cost about as much as predicting them (the schema still documents the route).
    body_bytes = await service.predict_audio(runtime=runtime, session=session, request=body)
    return Response(content=body_bytes, media_type="application/json")


@router.get(
    "/similar/{track_id}",
    response_model=SimilarResponse,
    summary="Nearest tracks by text and audio features",
)
async def similar(
    track_id: TrackIdPath,
    runtime: RuntimeDep,
    session: SessionDep,
    _caller: Caller,
    limit: Annotated[int, DecimalText, Query(ge=1, le=200)] = 20,
) -> SimilarResponse:
    return await service.similar_tracks(
        runtime=runtime, session=session, track_id=track_id, limit=limit
    )


@router.post(
    "/recommend", response_model=RecommendResponse, summary="Per-user SVM content recommendations"
)
async def recommend(
    body: RecommendRequest, runtime: RuntimeDep, session: SessionDep, caller: Caller
) -> RecommendResponse:
    caller.act_for(body.user_id)
    return await service.recommend(runtime=runtime, session=session, request=body)
