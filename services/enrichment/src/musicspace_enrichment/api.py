"""enrichment routes (thin): validate, call the domain, return schemas.

Credentials (musicspace_shared.auth): init-models initialises one user, so the app credential
or that user's token may call it; enrich-all runs over the whole database: admin key only.
enrich-status takes any credential; the worker's host and pid (owner), the last error and the
failed track ids are shown to the admin key only (also on the service port, without the
gateway: GET /admin/enrich-status).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from musicspace_enrichment.init_models import init_models as run_init_models
from musicspace_enrichment.runtime import Runtime
from musicspace_enrichment.schemas import InitModelsRequest, InitModelsResponse, JobStatus
from musicspace_shared.auth import AdminOnly, Caller
from musicspace_shared.web import runtime_dependency

router = APIRouter(prefix="/api", tags=["enrichment"])


RuntimeDep = Annotated[Runtime, Depends(runtime_dependency(Runtime))]


@router.post(
    "/init-models",
    response_model=InitModelsResponse,
    summary="Initialise a user: enrich their tracks, train m1, the m2 user SVM and m3",
    responses={
        401: {"description": "no or an unknown credential"},
        403: {"description": "a user token for another user"},
        404: {"description": "unknown user"},
    },
)
async def init_models(
    body: InitModelsRequest, request: Request, runtime: RuntimeDep, caller: Caller
) -> InitModelsResponse:
    caller.act_for(body.user_id)
    state = request.app.state
    return await run_init_models(
        engine=state.engine, peers=runtime.peers, settings=state.settings, user_id=body.user_id
    )


@router.post(
    "/enrich-all",
    response_model=JobStatus,
    status_code=202,
    summary="Start the bulk job over every track lacking features (or return the active one)",
    responses={
        200: {
            "description": "a job was already active (that job), or no track lacks features "
            "(no job is created: the latest job, or state idle)"
        },
        401: {"description": "no or an unknown credential"},
        403: {"description": "not the admin key"},
        409: {"description": "another start is in progress (retry)"},
    },
)
async def enrich_all(runtime: RuntimeDep, _admin: AdminOnly) -> JSONResponse:
    bulk = runtime.bulk
    _job_id, created = await bulk.start()
    status = (await bulk.status()).model_copy(update={"created": created})
    return JSONResponse(status.model_dump(mode="json"), status_code=202 if created else 200)


@router.get(
    "/enrich-status",
    response_model=JobStatus,
    summary="The latest bulk job: state, progress, rate, ETA, errors",
    description="Any credential. The worker (owner), last error, waiting reason and failed "
    "items are shown to the admin key only; other credentials see them empty.",
)
async def enrich_status(runtime: RuntimeDep, caller: Caller) -> JobStatus:
    if caller.scope == "admin":
        return await runtime.bulk.status(include_owner=True)
    status = await runtime.bulk.status()
    hidden = {"last_error": None, "waiting_reason": None, "failures": []}
    return status.model_copy(update=hidden)


# On the service port only (the gateway routes no /admin path): which process holds the job.
admin_router = APIRouter(prefix="/admin", tags=["admin"])


@admin_router.get(
    "/enrich-status",
    response_model=JobStatus,
    summary="The latest bulk job with the process holding it (admin)",
)
async def enrich_status_detail(runtime: RuntimeDep, _admin: AdminOnly) -> JobStatus:
    return await runtime.bulk.status(include_owner=True)
