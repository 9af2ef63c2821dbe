"""Forgetting one user in one service process (erasure, issue 17): what each service holds.

Every service the registry marks `user_state` serves `DELETE /admin/users/{user_id}` on its
own port (admin key; the gateway routes no /admin path). One call removes, in this process and
on its volume:
- the user's model files: every entry of the user under the family's user-model folders
  (M1/user_models/{id}/, M2/user_svm_models/{id}.pkl, M3/user_models/{id}_.cbm, with their
  sidecars), found as the admin cleanup finds them (musicspace_shared.model_ops), and what
  else on the volume holds the user (the runtime's `forget_saved_state`: m3's saved snapshot);
- the cached answers and models held for the user: the runtime's `user_caches()` (a mapping
  loses every key that mentions the id anywhere in it: a key such as (user_id, version, ...)
  or ((user_id, ...), limit); a false match only costs a recomputation), its per-user model
  holders (model_holder.UserModels) and its background queues (musicspace_shared.background:
  the user's waiting work dropped, running work cancelled);
- the metric series labelled with the user (any label named `user` or `user_id`).
Files are shared by the replicas of a service (one volume), caches and metrics are not: the
erasure (enrichment) calls this route on every replica. Calling it again removes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Iterable, MutableMapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from fastapi import APIRouter, FastAPI, Request
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, Field

from musicspace_shared import model_ops, registry
from musicspace_shared.auth import AdminOnly
from musicspace_shared.background import BackgroundQueue
from musicspace_shared.ids import UserIdPath, checked_user_id
from musicspace_shared.logs import log_fields
from musicspace_shared.model_holder import UserModels

logger = logging.getLogger("musicspace.forget")
USER_LABELS = frozenset({"user", "user_id"})


@runtime_checkable
class HoldsUserCaches(Protocol):
    def user_caches(
        self,
    ) -> Iterable[MutableMapping[Any, Any] | UserModels[Any] | BackgroundQueue]:
        """Every in-memory cache of this process that may hold a user's answers or models."""
        ...


@runtime_checkable
class HoldsSavedState(Protocol):
    def forget_saved_state(self, user_id: int) -> list[dict[str, Any]]:
        """Remove files beyond the user-model folders that may hold the user (m3's snapshot
        kept on the volume); what was removed, as `files` lists it."""
        ...


def mentions(key: Any, user_id: int) -> bool:
    """Whether a cache key holds the user id (as an int, at any depth of tuples)."""
    if isinstance(key, bool):
        return False
    if isinstance(key, int):
        return key == user_id
    if isinstance(key, tuple | list | frozenset):
        return any(mentions(part, user_id) for part in key)
    return False


def drop_cached(
    cache: MutableMapping[Any, Any] | UserModels[Any] | BackgroundQueue, user_id: int
) -> int:
    """Remove the user's entries from one cache; returns how many were removed."""
    if isinstance(cache, UserModels | BackgroundQueue):
        return cache.forget(user_id)
    keys = [key for key in list(cache.keys()) if mentions(key, user_id)]
    for key in keys:
        cache.pop(key, None)
    return len(keys)


def drop_metric_series(metrics_registry: CollectorRegistry, user_id: int) -> int:
    """Remove every series with a `user`/`user_id` label equal to the id; returns how many."""
    removed = 0
    wanted = str(user_id)
    # prometheus_client has no public listing of a registry's collectors or their children.
    for collector in list(getattr(metrics_registry, "_collector_to_names", {})):
        names = tuple(getattr(collector, "_labelnames", ()))
        positions = [i for i, name in enumerate(names) if name in USER_LABELS]
        children = getattr(collector, "_metrics", None)
        if not positions or children is None:
            continue
        for values in list(children):
            if any(values[i] == wanted for i in positions):
                collector.remove(*values)  # type: ignore[attr-defined]
                removed += 1
    return removed


def remove_user_files(model_root: Path, family: str, user_id: int) -> list[dict[str, Any]]:
    """Delete the user's model entries in one family's volume; what was removed (each entry:
    its paths relative to the model root, its bytes)."""
    checked_user_id(user_id)
    removed = []
    for entry in model_ops.user_model_entries(model_root / family, family):
        if entry.user_id == user_id:
            model_ops.remove_entry(entry)
            paths = [str(path.relative_to(model_root)) for path in entry.paths]
            removed.append({"paths": paths, "bytes": entry.bytes})
    # A write interrupted by a crash leaves its temp file (model_store.atomic_write_bytes):
    # hidden, so no entry, but it holds the user's model all the same.
    for folder in model_ops.USER_MODEL_FOLDERS:
        base = model_root / family / folder
        for prefix in (f".{user_id}.", f".{user_id}_."):
            for path in base.glob(f"{prefix}*.tmp") if base.is_dir() else ():
                size = path.stat().st_size
                path.unlink(missing_ok=True)
                removed.append({"paths": [str(path.relative_to(model_root))], "bytes": size})
    return removed


class ForgetReport(BaseModel):
    service: str
    instance: str = Field(description="the replica that answered: host name and process id")
    user_id: int
    files: list[dict[str, Any]] = Field(
        description="model entries removed: `paths` (files and folders under the model root, "
        "sidecars included) and `bytes`"
    )
    cache_entries: int = Field(description="cached answers and models dropped in this process")
    metric_series: int = Field(description="metric series labelled with the user, removed")


async def forget_user(app: FastAPI, user_id: int) -> ForgetReport:
    """Forget the user in this process and its service's volume (see the module docstring)."""
    service = app.state.service
    family = registry.get(service).model_family
    files: list[dict[str, Any]] = []
    if family is not None:
        root = app.state.settings.model_root
        files = await asyncio.to_thread(remove_user_files, root, family, user_id)
    runtime = getattr(app.state, "runtime", None)
    if isinstance(runtime, HoldsSavedState):
        files += await asyncio.to_thread(runtime.forget_saved_state, user_id)
    caches = runtime.user_caches() if isinstance(runtime, HoldsUserCaches) else ()
    cache_entries = sum(drop_cached(cache, user_id) for cache in caches)
    series = drop_metric_series(app.state.metrics.registry, user_id)
    report = ForgetReport(
        service=service,
        instance=f"{socket.gethostname()}:{os.getpid()}",
        user_id=user_id,
        files=files,
        cache_entries=cache_entries,
        metric_series=series,
    )
    logger.info(
        "user forgotten",
        extra=log_fields(user_id=user_id, files=len(files), cache_entries=cache_entries),
    )
    return report


def forget_router() -> APIRouter:
    """DELETE /admin/users/{user_id}: the route the erasure calls on every replica."""
    router = APIRouter(prefix="/admin/users", tags=["admin"])

    @router.delete(
        "/{user_id}",
        response_model=ForgetReport,
        summary="Forget a user here: their model files, cached answers and metric series",
        description="Admin key. Part of the erasure of a user (enrichment's "
        "`DELETE /api/users/{user_id}` calls it on every replica of every service holding "
        "per-user state). Idempotent: a second call removes nothing and says so.",
    )
    async def forget(user_id: UserIdPath, request: Request, _admin: AdminOnly) -> ForgetReport:
        return await forget_user(request.app, user_id)

    return router
