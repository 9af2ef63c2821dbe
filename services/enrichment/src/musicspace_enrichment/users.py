"""Ingestion over HTTP: users, their libraries and catalog tracks (musicspace_shared.ingest).

Each call is one transaction: a row the database refuses rejects the whole call and nothing is
written. The same call twice changes nothing (the answer counts unchanged rows). A write that
races another one on the same new rows (the same new track created by two calls at once) is a
409: retrying it gives the answer it would have given alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from musicspace_enrichment.user_schemas import (
    CatalogTrack,
    LibraryPut,
    LibraryResult,
    TracksResult,
    UserOut,
    UserPut,
    UserPutResult,
)
from musicspace_shared import ingest
from musicspace_shared.db.tables import User, UserTrack
from musicspace_shared.errors import Conflict, InvalidInput, NotFound

RACE = "a concurrent write changed the same rows: retry the call"


def reject_repeated_ids(track_ids: Sequence[str]) -> None:
    """422 naming the first track id sent twice (index and reason), before any write."""
    first: dict[str, int] = {}
    for index, track_id in enumerate(track_ids):
        if track_id in first:
            raise InvalidInput(
                f"tracks.{index}: track_id {track_id!r} already given at tracks.{first[track_id]}",
                index=index,
                reason="repeated track_id",
            )
        first[track_id] = index


async def _library_size(conn: AsyncConnection, user_id: int) -> int:
    query = sa.select(sa.func.count()).select_from(UserTrack).where(UserTrack.user_id == user_id)
    return int((await conn.execute(query)).scalar_one())


async def get_user(engine: AsyncEngine, user_id: int) -> UserOut:
    table = User.__table__
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(table).where(table.c.id == user_id))).first()
        if row is None:
            raise NotFound(f"user {user_id} not found", user_id=user_id)
        return UserOut(
            user_id=user_id, library_size=await _library_size(conn, user_id), **_user(row._asdict())
        )


def _user(stored: dict[str, Any]) -> dict[str, Any]:
    return {k: stored.get(k) for k in ("external_ref", "name", "created_at", "updated_at")}


async def put_user(engine: AsyncEngine, user_id: int, body: UserPut) -> UserPutResult:
    """Create or update a user; 409 when another user holds the external_ref."""
    fields = body.model_dump(include=body.model_fields_set)
    try:
        async with engine.begin() as conn:
            ref = fields.get("external_ref")
            owner = None if ref is None else await ingest.external_ref_owner(conn, ref)
            if owner is not None and owner != user_id:
                raise Conflict(f"external_ref {ref!r} belongs to user {owner}", user_id=owner)
            outcome, stored = await ingest.upsert_user(conn, user_id, fields)
            size = await _library_size(conn, user_id)
    except IntegrityError as exc:
        raise Conflict(RACE) from exc
    return UserPutResult(user_id=user_id, outcome=outcome, library_size=size, **_user(stored))  # type: ignore[arg-type]


async def put_library(engine: AsyncEngine, user_id: int, body: LibraryPut) -> LibraryResult:
    """Write the user's library (merge or replace); 404 for an unknown user."""
    reject_repeated_ids([t.track_id for t in body.tracks])
    items = [t.model_dump(include=t.model_fields_set | {"track_id"}) for t in body.tracks]
    try:
        async with engine.begin() as conn:
            exists = await conn.execute(sa.select(User.id).where(User.id == user_id))
            if exists.first() is None:
                raise NotFound(
                    f"user {user_id} not found: create it first (PUT /api/users/{user_id})",
                    user_id=user_id,
                )
            counts = await ingest.put_library(conn, user_id, items, replace=body.mode == "replace")
    except IntegrityError as exc:
        raise Conflict(RACE) from exc
    return LibraryResult(user_id=user_id, mode=body.mode, received=len(items), **counts.as_dict())


def _track_row(track: CatalogTrack) -> dict[str, Any]:
    row = track.model_dump(include=track.model_fields_set - {"features"} | {"track_id"})
    if track.features is not None:
        row |= track.features.model_dump()
    return row


async def upsert_tracks(engine: AsyncEngine, tracks: Sequence[CatalogTrack]) -> TracksResult:
    """Insert or update catalog tracks; measured features are kept as measured."""
    reject_repeated_ids([t.track_id for t in tracks])
    try:
        async with engine.begin() as conn:
            counts = await ingest.upsert_tracks(conn, [_track_row(t) for t in tracks])
    except IntegrityError as exc:
        raise Conflict(RACE) from exc
    return TracksResult(received=len(tracks), **counts.as_dict())
