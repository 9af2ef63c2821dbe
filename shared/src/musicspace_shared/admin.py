"""Admin routes every model-holding service mounts: storage usage and user-model cleanup."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from musicspace_shared import model_ops
from musicspace_shared.auth import AdminOnly
from musicspace_shared.inputs import Flag, StrictBody


class CleanupRequest(StrictBody):
    older_than_days: int = Field(90, strict=True, ge=1, le=3650)
    # strict: "false" or "no" must not turn a dry run into a removal.
    dry_run: Flag = True


def admin_router(family: str) -> APIRouter:
    """/admin/models (GET usage, POST cleanup) for one model family, admin credential required."""
    router = APIRouter(prefix="/admin/models", tags=["admin"])

    @router.get("", summary="Bytes and counts of this service's models")
    async def models_usage(request: Request, _admin: AdminOnly) -> dict[str, Any]:
        root = request.app.state.settings.model_root
        return await asyncio.to_thread(model_ops.usage, root, (family,))

    @router.post("/cleanup", summary="Remove user models unused for N days (dry run by default)")
    async def models_cleanup(
        body: CleanupRequest, request: Request, _admin: AdminOnly
    ) -> dict[str, Any]:
        root = request.app.state.settings.model_root
        result = await asyncio.to_thread(
            model_ops.cleanup,
            root,
            older_than_days=body.older_than_days,
            dry_run=body.dry_run,
            families=(family,),
        )
        request.app.state.metrics.count(
            "user_models_removed", 0 if body.dry_run else len(result["removed"])
        )
        return result

    return router
