"""The user lifecycle and the catalog over HTTP (routes only; musicspace_enrichment.users and
.erasure do the work).

Credentials: writing users, libraries and tracks takes the app credential or the admin key
(the web app's backend; a user token gets 403). Reading a user takes any credential for that
user; erasing one too, so a user token may delete its own user (the web app's "delete my
account" may call it directly).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from musicspace_enrichment import users
from musicspace_enrichment.erasure import erase_user
from musicspace_enrichment.runtime import Runtime
from musicspace_enrichment.user_schemas import (
    ErasureResult,
    LibraryPut,
    LibraryResult,
    TracksResult,
    TracksUpsert,
    UserOut,
    UserPut,
    UserPutResult,
)
from musicspace_shared.auth import Backend, Caller
from musicspace_shared.ids import UserIdPath
from musicspace_shared.web import runtime_dependency

router = APIRouter(prefix="/api", tags=["users and catalog"])
RuntimeDep = Annotated[Runtime, Depends(runtime_dependency(Runtime))]

BAD_ROW = {
    422: {
        "description": "invalid input: the field's location names the row "
        "(`tracks.<index>.<field>`) and the reason; nothing was written"
    },
    409: {"description": "a concurrent write changed the same rows: retry"},
}


@router.put(
    "/users/{user_id}",
    response_model=UserPutResult,
    summary="Create or update a user (idempotent)",
    description="201 when the user was created, 200 otherwise; `outcome` says whether it "
    "was inserted, updated or already as sent. Then put their library and call "
    "`POST /api/init-models`.",
    responses={
        201: {"description": "created", "model": UserPutResult},
        409: {"description": "another user holds this external_ref"},
    },
)
async def put_user(
    user_id: UserIdPath, body: UserPut, request: Request, _caller: Backend
) -> JSONResponse:
    result = await users.put_user(request.app.state.engine, user_id, body)
    status = 201 if result.outcome == "inserted" else 200
    return JSONResponse(result.model_dump(mode="json"), status_code=status)


@router.get(
    "/users/{user_id}",
    response_model=UserOut,
    summary="A user and the size of their library",
    responses={404: {"description": "unknown user"}},
)
async def get_user(user_id: UserIdPath, request: Request, caller: Caller) -> UserOut:
    caller.act_for(user_id)
    return await users.get_user(request.app.state.engine, user_id)


@router.put(
    "/users/{user_id}/library",
    response_model=LibraryResult,
    summary="Put a user's library: their PMS tracks and the playlist each came from",
    description="`merge` adds and updates, `replace` also removes the tracks not sent. "
    "Tracks unknown to the catalog are created with the catalog fields sent and blank "
    "features (init-models and enrich-all fill them). One transaction: a bad row rejects "
    "the call. The same call twice changes nothing.",
    responses={**BAD_ROW, 404: {"description": "unknown user: PUT /api/users/{user_id} first"}},
)
async def put_library(
    user_id: UserIdPath, body: LibraryPut, request: Request, _caller: Backend
) -> LibraryResult:
    return await users.put_library(request.app.state.engine, user_id, body)


@router.post(
    "/tracks",
    response_model=TracksResult,
    summary="Insert or update catalog tracks (bulk, idempotent)",
    description="A field left out keeps the stored value, null clears it. Measured "
    "`features` are stored as measured: predictions never overwrite them, and they replace "
    "predicted ones. One transaction: a bad row rejects the call.",
    responses=BAD_ROW,
)
async def post_tracks(body: TracksUpsert, request: Request, _caller: Backend) -> TracksResult:
    return await users.upsert_tracks(request.app.state.engine, body.tracks)


@router.delete(
    "/users/{user_id}",
    response_model=ErasureResult,
    summary="Erase a user: rows, model files, cached answers and metric series everywhere",
    description="Deletes the user, their library, interactions and events, then asks every "
    "replica of m1, m2, m3 and llm to delete the user's model files and cached answers. "
    "Idempotent: a repeated call answers 200 with `existed: false` and nothing removed "
    "(never 404), so a retry after a 503 finishes the erasure.",
    responses={
        503: {
            "description": "a replica was not reached: `unavailable` names it, `removed` says "
            "what was removed; retry"
        }
    },
)
async def delete_user(
    user_id: UserIdPath, request: Request, runtime: RuntimeDep, caller: Caller
) -> ErasureResult:
    caller.act_for(user_id)
    return await erase_user(engine=request.app.state.engine, peers=runtime.forget, user_id=user_id)
