"""The one writer of catalog tracks, users and their libraries (PMS tracks).

Shared by the HTTP ingestion routes (enrichment: `POST /api/tracks`, `PUT /api/users/{id}`,
`PUT /api/users/{id}/library`) and the `musicspace import` CLI, so both keep one contract:

- **Measured features are never overwritten by a prediction.** A track written with its nine
  features gets `features_source = 'measured'` (replacing predicted ones, whose m2 stamp in
  `external_metadata` is dropped); enrichment only writes tracks whose `features_source` is
  NULL. A write without features keeps the stored ones: features are never cleared here.
- **Only what changed is written**, so the same call twice changes nothing, and the answer
  counts inserted / updated / unchanged rows. A key absent from a row keeps its stored value;
  a key given as None clears it (text fields, popularity).
- Callers run these inside one transaction (`engine.begin()`): a failure writes nothing.

Rows are validated before they get here (the routes' schemas, the importer's parser); the
functions check only what needs the database.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from musicspace_shared.db.json_patch import merge_patch_expr
from musicspace_shared.db.tables import Track, User, UserTrack, utcnow
from musicspace_shared.features import FEATURE_RANGES, FEATURES

CHUNK = 2000
TRACK_FIELDS = (
    "title",
    "artist",
    "album",
    "album_id",
    "release_date",
    "popularity",
    "genre",
    "subgenre",
)
MEMBERSHIP_FIELDS = ("playlist_id", "playlist_name")
TRACK: sa.Table = Track.__table__  # type: ignore[attr-defined]
USER: sa.Table = User.__table__  # type: ignore[attr-defined]
USER_TRACK: sa.Table = UserTrack.__table__  # type: ignore[attr-defined]
# Measured features replace predicted ones: the m2 stamp must not outlive the values it described.
_DROP_PREDICTION = '{"audio_features": null}'


@dataclass
class Counts:
    """What a write did: rows inserted, updated (a stored value changed) and left unchanged."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class LibraryCounts(Counts):
    """A library write: memberships, plus the ones a replace removed and the catalog tracks
    the call created (unknown to the catalog, written with blank features)."""

    removed: int = 0
    tracks_created: int = 0
    library_size: int = 0


def check_features(values: Mapping[str, Any]) -> dict[str, float] | None:
    """All nine features finite and in range (FEATURE_RANGES), or none; ValueError otherwise."""
    present = [name for name in FEATURES if values.get(name) is not None]
    if not present:
        return None
    if len(present) != len(FEATURES):
        missing = ", ".join(name for name in FEATURES if name not in present)
        raise ValueError(f"incomplete audio features (missing {missing}): give all nine or none")
    checked = {}
    for name in FEATURES:
        value = float(values[name])
        low, high = FEATURE_RANGES[name]
        if not math.isfinite(value) or not low <= value <= high:
            raise ValueError(f"{name}={values[name]} outside {low}..{high}")
        checked[name] = value
    return checked


def chunks(rows: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def group_by_keys(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """Rows by their set of keys: one executemany statement per shape."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return groups


async def insert_rows(conn: AsyncConnection, table: type, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT in chunks, one statement per row shape (rows with and without features differ)."""
    for chunk in chunks(rows):
        for group in group_by_keys(chunk).values():
            await conn.execute(sa.insert(table), group)


async def existing_tracks(conn: AsyncConnection, track_ids: Sequence[str]) -> dict[str, Any]:
    """The stored catalog values of these ids (those that exist), by id."""
    columns = [TRACK.c[name] for name in ("track_id", *TRACK_FIELDS, *FEATURES, "features_source")]
    found: dict[str, Any] = {}
    for chunk in chunks(list(track_ids)):
        query = sa.select(*columns).where(TRACK.c.track_id.in_(chunk))
        found.update((row.track_id, row) for row in (await conn.execute(query)).all())
    return found


def _track_changes(new: dict[str, Any], old: Any) -> bool:
    fields = [name for name in TRACK_FIELDS if name in new]
    if "features_source" in new:
        fields += FEATURES
        if old.features_source != "measured":
            return True
    return any(new[name] != getattr(old, name) for name in fields)


async def upsert_tracks(
    conn: AsyncConnection, rows: Sequence[dict[str, Any]], *, now: datetime | None = None
) -> Counts:
    """Insert or update catalog tracks (each a dict: track_id, any of TRACK_FIELDS, and all nine
    features or none); ids must be unique. Features given: stored as measured."""
    now = now or utcnow()
    rows = [_with_source(row) for row in rows]
    old = await existing_tracks(conn, [row["track_id"] for row in rows])
    new = [dict(row, created_at=now, updated_at=now) for row in rows if row["track_id"] not in old]
    changed = [
        row for row in rows if row["track_id"] in old and _track_changes(row, old[row["track_id"]])
    ]
    await insert_rows(conn, Track, new)
    predicted = {tid for tid, row in old.items() if row.features_source == "predicted"}
    for chunk in chunks(changed):
        for keys, group in group_by_keys(chunk).items():
            values: dict[str, Any] = {k: sa.bindparam(k) for k in keys if k != "track_id"}
            values["updated_at"] = now
            statement = sa.update(TRACK).where(TRACK.c.track_id == sa.bindparam("b_track_id"))
            replaces = "features_source" in keys
            plain = [r for r in group if not replaces or r["track_id"] not in predicted]
            replacing = [r for r in group if replaces and r["track_id"] in predicted]
            for batch, extra in ((plain, {}), (replacing, _drop_prediction(conn))):
                if batch:
                    await conn.execute(
                        statement.values(values | extra),
                        [dict(r, b_track_id=r["track_id"]) for r in batch],
                    )
    return Counts(
        inserted=len(new), updated=len(changed), unchanged=len(rows) - len(new) - len(changed)
    )


def _with_source(row: dict[str, Any]) -> dict[str, Any]:
    has = any(row.get(name) is not None for name in FEATURES)
    row = {k: v for k, v in row.items() if k not in FEATURES or has}
    return row | {"features_source": "measured"} if has else row


def _drop_prediction(conn: AsyncConnection) -> dict[str, Any]:
    column = TRACK.c.external_metadata
    return {"external_metadata": merge_patch_expr(column, _DROP_PREDICTION, conn.dialect)}


# ---------------------------------------------------------------- users


async def upsert_user(
    conn: AsyncConnection, user_id: int, fields: Mapping[str, Any], *, now: datetime | None = None
) -> tuple[str, dict[str, Any]]:
    """Create the user or update the given fields (external_ref, name; a field not given keeps
    its value). Returns ("inserted" | "updated" | "unchanged", the stored row)."""
    now = now or utcnow()
    table = USER
    row = (await conn.execute(sa.select(table).where(table.c.id == user_id))).first()
    if row is None:
        values = {"id": user_id, **fields, "created_at": now, "updated_at": now}
        await conn.execute(sa.insert(table).values(values))
        return "inserted", {"external_ref": None, "name": None} | values
    stored = row._asdict()
    changes = {k: v for k, v in fields.items() if stored[k] != v}
    if not changes:
        return "unchanged", stored
    await conn.execute(
        sa.update(table).where(table.c.id == user_id).values(changes | {"updated_at": now})
    )
    return "updated", stored | changes | {"updated_at": now}


async def external_ref_owner(conn: AsyncConnection, external_ref: str) -> int | None:
    """The user holding this external_ref, if any (it is unique)."""
    query = sa.select(USER.c.id).where(USER.c.external_ref == external_ref)
    return (await conn.execute(query)).scalar()


# ---------------------------------------------------------------- libraries


async def put_library(
    conn: AsyncConnection,
    user_id: int,
    items: Sequence[dict[str, Any]],
    *,
    replace: bool,
    now: datetime | None = None,
) -> LibraryCounts:
    """Write a user's PMS tracks (each a dict: track_id, playlist_id, playlist_name and, for a
    track unknown to the catalog, any of TRACK_FIELDS). Merge keeps the user's other tracks;
    replace removes them. Unknown tracks are created with blank features (enrichment fills
    them); a known track's catalog values are not changed here (POST /api/tracks does that).
    The user must exist; track ids must be unique."""
    now = now or utcnow()
    known = await existing_tracks(conn, [item["track_id"] for item in items])
    unknown = [
        {k: item[k] for k in ("track_id", *TRACK_FIELDS) if k in item}
        for item in items
        if item["track_id"] not in known
    ]
    counts = LibraryCounts(tracks_created=len(unknown))
    if unknown:
        await insert_rows(conn, Track, [dict(t, created_at=now, updated_at=now) for t in unknown])
    table = USER_TRACK
    query = sa.select(table.c.track_id, table.c.playlist_id, table.c.playlist_name).where(
        table.c.user_id == user_id
    )
    stored = {
        row.track_id: (row.playlist_id, row.playlist_name) for row in await conn.execute(query)
    }
    wanted = {
        item["track_id"]: (item.get("playlist_id"), item.get("playlist_name")) for item in items
    }
    new = [
        {"user_id": user_id, "track_id": tid, "playlist_id": p, "playlist_name": n, "added_at": now}
        for tid, (p, n) in wanted.items()
        if tid not in stored
    ]
    changed = [
        {"b_track_id": tid, "playlist_id": p, "playlist_name": n}
        for tid, (p, n) in wanted.items()
        if tid in stored and stored[tid] != (p, n)
    ]
    gone = [tid for tid in stored if tid not in wanted] if replace else []
    await insert_rows(conn, UserTrack, new)
    if changed:
        await conn.execute(
            sa.update(table)
            .where(table.c.user_id == user_id, table.c.track_id == sa.bindparam("b_track_id"))
            .values(
                playlist_id=sa.bindparam("playlist_id"), playlist_name=sa.bindparam("playlist_name")
            ),
            changed,
        )
    for chunk in chunks(gone):
        await conn.execute(
            sa.delete(table).where(table.c.user_id == user_id, table.c.track_id.in_(chunk))
        )
    counts.inserted, counts.updated, counts.removed = len(new), len(changed), len(gone)
    counts.unchanged = len(wanted) - len(new) - len(changed)
    counts.library_size = len(stored) + len(new) - len(gone)
    if new or changed or gone:
        # A removal changes no added_at: user.updated_at tells init-models the library moved.
        await conn.execute(sa.update(USER).where(USER.c.id == user_id).values(updated_at=now))
    return counts
