"""Bulk, idempotent, streaming import of a catalog file, a playlists file and an interactions file.

A file is read in chunks of ROWS_PER_CHUNK rows, so memory stays bounded whatever its size (a
10M-row file is never held whole), and written in one transaction: a failure, or a rejected
file, leaves the DB as it was. Each chunk is checked (its rows parsed; the tracks and users
they name looked up) and its new or changed rows written in batches (executemany), so a second
run of the same file changes nothing. Bad rows are reported with their line numbers (the first
MAX_REPORTED of them; all are counted). With on_error="reject" the first bad row stops the
writing; the rest of the file is still parsed, so every malformed row is reported (rows naming
unknown tracks or users are reported up to that point), then the transaction is rolled back.
With on_error="skip" the good rows are written. A row repeated in the file: the last one wins.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Callable, Collection, Iterable, Iterator
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
# Rows read, checked and written together: large enough for few round trips, small enough
# that a chunk's rows and lookups stay a few MB (SQLite's IN lists take them too).
ROWS_PER_CHUNK = 5000
MAX_REPORTED = 10_000  # bad rows kept with their line and reason; all are counted


class ImportRejected(Exception):
    """The file has bad rows and the caller chose to reject it."""

    def __init__(self, errors: list[tuple[int, str]], total: int | None = None) -> None:
        self.errors = errors
        self.total = len(errors) if total is None else total
        super().__init__(f"{self.total} bad row(s)")


@dataclass
class ImportReport:
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)  # the first MAX_REPORTED
    skipped_total: int = 0
    users_created: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped_total,
            "users_created": self.users_created,
        }


class _Run:
    """One import's bookkeeping: the report, the bad rows, whether writing goes on."""

    def __init__(self, on_error: str, progress: Progress | None) -> None:
        self.on_error = on_error
        self.progress = progress
        self.report = ImportReport()

    @property
    def writing(self) -> bool:
        return not (self.on_error == "reject" and self.report.skipped_total)

    def bad(self, line: int, message: str) -> None:
        self.report.skipped_total += 1
        if len(self.report.skipped) < MAX_REPORTED:
            self.report.skipped.append((line, message))

    def parse(
        self, rows: list[tuple[int, dict[str, str]]], parse: Callable[[dict[str, str]], Any]
    ) -> list[tuple[int, Any]]:
        """(line, parsed row) for the rows that parse; the others are recorded as bad."""
        good = []
        for line, row in rows:
            self.report.rows += 1
            try:
                good.append((line, parse(row)))
            except (ValueError, TypeError) as exc:
                self.bad(line, str(exc))
        return good

    def wrote(self, rows: int) -> None:
        if self.progress and rows:
            self.progress(rows)

    def finish(self) -> ImportReport:
        """The report; raises ImportRejected (inside the transaction: nothing is written)."""
        if self.on_error == "reject" and self.report.skipped_total:
            raise ImportRejected(self.report.skipped, self.report.skipped_total)
        return self.report


def _read_chunks(
    path: Path, required: tuple[str, ...], size: int | None = None
) -> Iterator[list[tuple[int, dict[str, str]]]]:
    """Lists of (line number, row); line 1 is the header."""
    size = size or ROWS_PER_CHUNK
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:  # type: ignore[operator]
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise ImportRejected([(1, f"missing column(s): {', '.join(missing)}")])
        chunk: list[tuple[int, dict[str, str]]] = []
        for row in reader:
            chunk.append((reader.line_num, row))
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


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


async def import_catalog(
    engine: AsyncEngine, path: Path, *, on_error: str = "reject", progress: Progress | None = None
) -> ImportReport:
    """Import a catalog file; measured features are set, blank ones never clear existing values
    (musicspace_shared.ingest.upsert_tracks: the writer POST /api/tracks uses too)."""
    run = _Run(on_error, progress)
    async with engine.begin() as conn:
        now = utcnow()
        for rows in _read_chunks(path, CATALOG_REQUIRED):
            by_id = {values["track_id"]: values for _line, values in run.parse(rows, parse_track)}
            if not run.writing or not by_id:
                continue
            counts = await upsert_tracks(conn, list(by_id.values()), now=now)
            run.report.inserted += counts.inserted
            run.report.updated += counts.updated
            run.report.unchanged += counts.unchanged
            run.wrote(len(by_id))
        return run.finish()


async def _known_tracks(conn: AsyncConnection, track_ids: Collection[str]) -> set[str]:
    found: set[str] = set()
    for chunk in chunks(list(track_ids)):
        query = sa.select(Track.track_id).where(Track.track_id.in_(chunk))
        found.update((await conn.execute(query)).scalars())
    return found


async def _users_by_ref(conn: AsyncConnection, refs: Collection[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in chunks(list(refs)):
        query = sa.select(User.external_ref, User.id).where(User.external_ref.in_(chunk))
        found.update((ref, uid) for ref, uid in (await conn.execute(query)).all())
    return found


async def _stored_pairs(
    conn: AsyncConnection, table: Any, pairs: Iterable[tuple[int, str]], *columns: str
) -> dict[tuple[int, str], tuple[Any, ...]]:
    """The stored rows of these (user_id, track_id) pairs, with `columns`: the chunk's users
    and tracks select a range of the primary key; only the asked pairs are kept."""
    wanted = set(pairs)
    users = sorted({u for u, _t in wanted})
    tracks = list({t for _u, t in wanted})
    key = (table.user_id, table.track_id)
    out: dict[tuple[int, str], tuple[Any, ...]] = {}
    for user_chunk in chunks(users, 500):
        for track_chunk in chunks(tracks):
            query = sa.select(*key, *(getattr(table, c) for c in columns)).where(
                key[0].in_(user_chunk), key[1].in_(track_chunk)
            )
            for row in (await conn.execute(query)).all():
                pair = (row[0], row[1])
                if pair in wanted:
                    out[pair] = tuple(row[2:])
    return out


def _check_refs(
    run: _Run,
    parsed: list[tuple[int, Any]],
    known_tracks: set[str],
    users: dict[str, int] | None = None,
) -> list[Any]:
    """The parsed rows whose track (and user) exist; the others are recorded as bad."""
    good = []
    for line, values in parsed:
        ref, track_id = values[0], values[1]
        if users is not None and ref not in users:
            run.bad(line, f"unknown user_ref {ref!r}")
        elif track_id not in known_tracks:
            where = "" if users is not None else f" in playlist {ref!r}"
            run.bad(line, f"unknown track_id {track_id!r}{where}")
        else:
            good.append(values)
    return good


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
    run = _Run(on_error, progress)
    report = run.report
    async with engine.begin() as conn:
        next_id = ((await conn.execute(sa.select(sa.func.max(User.id)))).scalar() or 0) + 1
        now = utcnow()
        for rows in _read_chunks(path, PLAYLIST_REQUIRED):
            parsed = run.parse(rows, _parse_membership)
            if not run.writing:
                continue
            known = await _known_tracks(conn, {m[1] for _line, m in parsed})
            memberships = _check_refs(run, parsed, known)
            if not run.writing:
                continue
            users = await _users_by_ref(conn, {m[0] for m in memberships})
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
            await insert_rows(conn, User, new_users)
            report.users_created += len(new_users)
            keys = [(users[p], t) for p, t, _name in memberships]
            owned = set(await _stored_pairs(conn, UserTrack, keys))
            new_rows = []
            for (playlist_id, track_id, name), key in zip(memberships, keys, strict=True):
                if key in owned:
                    continue
                owned.add(key)
                new_rows.append(
                    {
                        "user_id": key[0],
                        "track_id": track_id,
                        "playlist_id": playlist_id,
                        "playlist_name": name,
                        "added_at": now,
                    }
                )
            await insert_rows(conn, UserTrack, new_rows)
            run.wrote(len(new_rows))
            report.inserted += len(new_rows)
            report.unchanged += len(memberships) - len(new_rows)
        return run.finish()


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
    run = _Run(on_error, progress)
    async with engine.begin() as conn:
        now = utcnow()
        for rows in _read_chunks(path, INTERACTION_REQUIRED):
            parsed = run.parse(rows, _parse_interaction)
            if not run.writing:
                continue
            users = await _users_by_ref(conn, {p[0] for _line, p in parsed})
            known = await _known_tracks(conn, {p[1] for _line, p in parsed})
            good = _check_refs(run, parsed, known, users)
            if not run.writing:
                continue
            wanted: dict[tuple[int, str], tuple[Any, ...]] = {}
            for ref, track_id, *values in good:
                wanted[(users[ref], track_id)] = tuple(values)  # a repeated pair: the last wins
            await _write_interactions(conn, run, wanted, now)
        return run.finish()


async def _write_interactions(
    conn: AsyncConnection,
    run: _Run,
    wanted: dict[tuple[int, str], tuple[Any, ...]],
    now: datetime,
) -> None:
    existing = await _stored_pairs(conn, Interaction, wanted, *INTERACTION_FIELDS)

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
    await insert_rows(conn, Interaction, new)
    if changed:
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
                for r in changed
            ],
        )
    run.wrote(len(new) + len(changed))
    run.report.inserted += len(new)
    run.report.updated += len(changed)
    run.report.unchanged += len(wanted) - len(new) - len(changed)


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
