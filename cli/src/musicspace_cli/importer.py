"""Bulk, idempotent import of a catalog file, a playlists file and an interactions file.

Each file is validated whole first (bad rows reported with their line numbers), then written
in one transaction: a failure leaves the DB as it was. Only new or changed rows are written,
so a second run of the same file changes nothing.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from musicspace_m3.events import check_occurred_at
from musicspace_shared.db.tables import Interaction, Track, User, UserTrack, utcnow
from musicspace_shared.features import FEATURES
from musicspace_shared.ids import is_valid_track_id
from musicspace_shared.ingest import (
    check_features,
    chunks,
    insert_rows,
    upsert_tracks,
)

Progress = Callable[[int], None]
"""Called with the number of rows just written."""

CATALOG_REQUIRED = ("track_id", "track_name", "track_artist")
PLAYLIST_REQUIRED = ("playlist_id", "track_id")
INTERACTION_REQUIRED = ("user_ref", "track_id", "play_count", "like_score", "skip_count")
INTERACTION_FIELDS = ("play_count", "like_score", "skip_count", "last_played_at")


class ImportRejected(Exception):
    """The file has bad rows and the caller chose to reject it."""

    def __init__(self, errors: list[tuple[int, str]]) -> None:
        super().__init__(f"{len(errors)} bad row(s)")
        self.errors = errors


@dataclass
class ImportReport:
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    users_created: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": len(self.skipped),
            "users_created": self.users_created,
        }


def _read_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) pairs; line 1 is the header."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:  # type: ignore[operator]
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise ImportRejected([(1, f"missing column(s): {', '.join(missing)}")])
        for row in reader:
            yield reader.line_num, row


def _text(value: str | None, limit: int) -> str | None:
    value = (value or "").strip()
    if len(value) > limit:
        raise ValueError(f"longer than {limit} characters")
    return value or None


def parse_track(row: dict[str, str]) -> dict[str, Any]:
    """One catalog row as Track column values; raises ValueError with the reason."""
    track_id = (row.get("track_id") or "").strip()
    if not is_valid_track_id(track_id):
        raise ValueError(f"invalid track_id {track_id!r}")
    popularity_raw = (row.get("track_popularity") or "").strip()
    popularity = None
    if popularity_raw:
        popularity = int(float(popularity_raw))
        if not 0 <= popularity <= 100:
            raise ValueError(f"track_popularity {popularity} outside 0..100")
    values: dict[str, Any] = {
        "track_id": track_id,
        "title": _text(row.get("track_name"), 512),
        "artist": _text(row.get("track_artist"), 512),
        "album": _text(row.get("track_album_name"), 512),
        "album_id": _text(row.get("track_album_id"), 64),
        "release_date": _text(row.get("track_album_release_date"), 10),
        "popularity": popularity,
        "genre": _text(row.get("genre"), 64),
        "subgenre": _text(row.get("subgenre"), 64),
    }
    raw = {name: (row.get(name) or "").strip() for name in FEATURES}
    measured = check_features({name: float(text) for name, text in raw.items() if text})
    if measured is not None:
        values |= measured
    return values


def _validate(
    path: Path,
    required: tuple[str, ...],
    parse: Callable[[dict[str, str]], Any],
    on_error: str,
    report: ImportReport,
) -> list[tuple[int, Any]]:
    """(line, parsed row) for the good rows; bad rows reject the file or are skipped."""
    parsed, errors = [], []
    for line, row in _read_rows(path, required):
        report.rows += 1
        try:
            parsed.append((line, parse(row)))
        except (ValueError, TypeError) as exc:
            errors.append((line, str(exc)))
    if errors and on_error == "reject":
        raise ImportRejected(errors)
    report.skipped.extend(errors)
    return parsed


async def import_catalog(
    engine: AsyncEngine, path: Path, *, on_error: str = "reject", progress: Progress | None = None
) -> ImportReport:
    """Import a catalog file; measured features are set, blank ones never clear existing values
    (musicspace_shared.ingest.upsert_tracks: the writer POST /api/tracks uses too)."""
    report = ImportReport()
    rows = _validate(path, CATALOG_REQUIRED, parse_track, on_error, report)
    by_id: dict[str, dict[str, Any]] = {}
    for _line, values in rows:
        by_id[values["track_id"]] = values  # a repeated id: the last row wins
    async with engine.begin() as conn:
        now = utcnow()
        for chunk in chunks(list(by_id.values())):
            counts = await upsert_tracks(conn, chunk, now=now)
            report.inserted += counts.inserted
            report.updated += counts.updated
            report.unchanged += counts.unchanged
            if progress:
                progress(len(chunk))
    return report


def _parse_membership(row: dict[str, str]) -> tuple[str, str, str | None]:
    playlist_id = (row.get("playlist_id") or "").strip()
    if not playlist_id or len(playlist_id) > 128:
        raise ValueError("invalid playlist_id")
    track_id = (row.get("track_id") or "").strip()
    if not is_valid_track_id(track_id):
        raise ValueError(f"invalid track_id {track_id!r}")
    return playlist_id, track_id, _text(row.get("playlist_name"), 256)


async def import_playlists(
    engine: AsyncEngine, path: Path, *, on_error: str = "reject", progress: Progress | None = None
) -> ImportReport:
    """Each playlist becomes a user (found again by its playlist id) whose PMS tracks are its tracks."""
    report = ImportReport()
    memberships = _validate(path, PLAYLIST_REQUIRED, _parse_membership, on_error, report)
    async with engine.begin() as conn:
        known_tracks = set((await conn.execute(sa.select(Track.track_id))).scalars())
        errors = [
            (line, f"unknown track_id {m[1]!r} in playlist {m[0]!r}")
            for line, m in memberships
            if m[1] not in known_tracks
        ]
        if errors and on_error == "reject":
            raise ImportRejected(errors)
        report.skipped.extend(errors)
        memberships = [m for _line, m in memberships if m[1] in known_tracks]
        users = {
            ref: uid
            for uid, ref in (
                await conn.execute(
                    sa.select(User.id, User.external_ref).where(User.external_ref.is_not(None))
                )
            ).all()
        }
        next_id = ((await conn.execute(sa.select(sa.func.max(User.id)))).scalar() or 0) + 1
        now = utcnow()
        new_users = []
        for playlist_id, _track, name in memberships:
            if playlist_id not in users:
                users[playlist_id] = next_id
                new_users.append(
                    {
                        "id": next_id,
                        "external_ref": playlist_id,
                        "name": name,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                next_id += 1
        await _insert_chunks(conn, User, new_users, None)
        report.users_created = len(new_users)
        owned = set(
            map(tuple, (await conn.execute(sa.select(UserTrack.user_id, UserTrack.track_id))).all())
        )
        new_rows, seen = [], set()
        for playlist_id, track_id, name in memberships:
            key = (users[playlist_id], track_id)
            if key in owned or key in seen:
                continue
            seen.add(key)
            new_rows.append(
                {
                    "user_id": key[0],
                    "track_id": track_id,
                    "playlist_id": playlist_id,
                    "playlist_name": name,
                    "added_at": now,
                }
            )
        await _insert_chunks(conn, UserTrack, new_rows, progress)
        report.inserted = len(new_rows)
        report.unchanged = len(memberships) - len(new_rows)
    return report


def _count(row: dict[str, str], name: str, low: int, high: int) -> int:
    text = (row.get(name) or "").strip()
    if not text.isdigit() and not (text.startswith("-") and text[1:].isdigit()):
        raise ValueError(f"{name} must be a whole number, got {text!r}")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{name} {value} outside {low}..{high}")
    return value


def _parse_interaction(row: dict[str, str]) -> tuple[str, str, int, int, int, datetime | None]:
    user_ref = (row.get("user_ref") or "").strip()
    if not user_ref or len(user_ref) > 128:
        raise ValueError("invalid user_ref")
    track_id = (row.get("track_id") or "").strip()
    if not is_valid_track_id(track_id):
        raise ValueError(f"invalid track_id {track_id!r}")
    played_text = (row.get("last_played_at") or "").strip()
    played = None
    if played_text:
        try:
            played = check_occurred_at(datetime.fromisoformat(played_text))
        except ValueError as exc:
            raise ValueError(f"last_played_at {played_text!r}: {exc}") from None
    return (
        user_ref,
        track_id,
        _count(row, "play_count", 0, 10**9),
        _count(row, "like_score", -1, 1),
        _count(row, "skip_count", 0, 10**9),
        played,
    )


async def import_interactions(
    engine: AsyncEngine, path: Path, *, on_error: str = "reject", progress: Progress | None = None
) -> ImportReport:
    """Plays, likes and skips per (user, track), the user found by the `user_ref` its playlist
    import gave it (`external_ref`). A row replaces the stored counts of its pair: importing the
    same file twice changes nothing."""
    report = ImportReport()
    parsed = _validate(path, INTERACTION_REQUIRED, _parse_interaction, on_error, report)
    async with engine.begin() as conn:
        known_tracks = set((await conn.execute(sa.select(Track.track_id))).scalars())
        users = dict(
            (
                await conn.execute(
                    sa.select(User.external_ref, User.id).where(User.external_ref.is_not(None))
                )
            ).all()
        )
        errors = [
            (
                line,
                f"unknown user_ref {p[0]!r}" if p[0] not in users else f"unknown track_id {p[1]!r}",
            )
            for line, p in parsed
            if p[0] not in users or p[1] not in known_tracks
        ]
        if errors and on_error == "reject":
            raise ImportRejected(errors)
        report.skipped.extend(errors)
        wanted: dict[tuple[int, str], tuple[Any, ...]] = {}
        for _line, (ref, track_id, *values) in parsed:
            if ref in users and track_id in known_tracks:
                wanted[(users[ref], track_id)] = tuple(values)  # a repeated pair: the last wins
        existing = {
            (row[0], row[1]): tuple(row[2:])
            for row in (
                await conn.execute(
                    sa.select(
                        Interaction.user_id,
                        Interaction.track_id,
                        *[getattr(Interaction, f) for f in INTERACTION_FIELDS],
                    )
                )
            ).all()
        }
        now = utcnow()

        def as_row(key: tuple[int, str], values: tuple[Any, ...]) -> dict[str, Any]:
            return dict(zip(INTERACTION_FIELDS, values, strict=True)) | {
                "user_id": key[0],
                "track_id": key[1],
                "updated_at": now,
            }

        new = [as_row(k, v) for k, v in wanted.items() if k not in existing]
        changed = [
            as_row(k, v) for k, v in wanted.items() if k in existing and _differs(v, existing[k])
        ]
        await _insert_chunks(conn, Interaction, new, progress)
        for chunk in chunks(changed):
            await conn.execute(
                sa.update(Interaction)
                .where(
                    Interaction.user_id == sa.bindparam("b_user_id"),
                    Interaction.track_id == sa.bindparam("b_track_id"),
                )
                .values({f: sa.bindparam(f) for f in INTERACTION_FIELDS} | {"updated_at": now}),
                [
                    {f: r[f] for f in INTERACTION_FIELDS}
                    | {"b_user_id": r["user_id"], "b_track_id": r["track_id"]}
                    for r in chunk
                ],
            )
            if progress:
                progress(len(chunk))
        report.inserted, report.updated = len(new), len(changed)
        report.unchanged = len(wanted) - len(new) - len(changed)
    return report


def _differs(new: tuple[Any, ...], old: tuple[Any, ...]) -> bool:
    """Stored datetimes may come back without their zone (SQLite) or whole seconds: compare UTC."""
    *counts, played = new
    *old_counts, old_played = old
    if tuple(counts) != tuple(old_counts):
        return True
    if played is None or old_played is None:
        return played is not old_played
    if old_played.tzinfo is None:
        old_played = old_played.replace(tzinfo=UTC)
    return abs((played - old_played).total_seconds()) >= 1


async def _insert_chunks(
    conn: AsyncConnection, table: type, rows: list[dict[str, Any]], progress: Progress | None
) -> None:
    for chunk in chunks(rows):
        await insert_rows(conn, table, chunk)
        if progress:
            progress(len(chunk))
