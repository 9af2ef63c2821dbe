"""recommend's route (thin): check the caller, run the domain, return the answer.

Credentials (musicspace_shared.auth): the app credential or the admin key for any user; a user
token for its own user only (403 for another, before any lookup).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from musicspace_recommend import service
from musicspace_recommend.runtime import Runtime
from musicspace_recommend.schemas import RecommendRequest, RecommendResponse
from musicspace_shared.auth import Caller
from musicspace_shared.web import SessionDep, runtime_dependency

router = APIRouter(prefix="/api", tags=["recommend"])

RuntimeDep = Annotated[Runtime, Depends(runtime_dependency(Runtime))]


@router.post(
    "/recommend",
    response_model=RecommendResponse,
    summary="Recommendations for a user: the models that fit their data, blended",
    description="Asks m1, m2 and m3 (those that fit the user's data) and, for a `query`, llm, "
    "each within its deadline and in parallel; fuses their rankings by reciprocal rank fusion "
    "(or serves the one model the user's A/B arm names) and says which models contributed "
    "and why the others did not. A model that is down, slow or has nothing is left out; with "
    "none left, and for users with no data, popular and newly added tracks per genre answer. "
    "Takes the common recommend request: `filters`, `exclude`, `exclude_owned` and "
    "`max_per_artist` go to every model asked and are applied again to the fused list, which "
    "is paged with `cursor` / `next_cursor` (each model asked for RECOMMEND_DEPTH tracks, "
    "50 by default, at most 200, llm at most 50, for every page, so pages never overlap or "
    "skip while the inputs are unchanged). "
    "Send the answer's `recommendation_id` with the events on its tracks (POST "
    "/api/m3/events: impression, click, play, ...) to measure it online.",
    responses={404: {"description": "unknown user"}},
)
async def recommend(
    body: RecommendRequest,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    caller: Caller,
) -> RecommendResponse:
    caller.act_for(body.user_id)
    state = request.app.state
    return await service.recommend(
        session=session, runtime=runtime, settings=state.settings, metrics=state.metrics, body=body
    )
