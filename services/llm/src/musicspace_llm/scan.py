"""The DB side of an index sync: which tracks are new or changed since the index last looked.

A sync scans the (track_id, updated_at) keys at or after its look-back point, reads the full
rows of the tracks whose updated_at moved, and keeps those whose indexed content (the fields
a document is made of, features, popularity) differs. After a fresh import every key lies
inside the look-back window (LLM_SYNC_OVERLAP_S), so each sync meets tens of thousands of rows.
In the serving process that stopped the event loop for up to 0.56 s per sync in small slices
(1-3.5 s on a loaded machine), and the garbage it left set off gen-2 collections of 0.35-0.6 s
over the whole heap (gc callbacks, 28k-track catalog, shared 2-core machine).

So the scan runs in the service's low-priority worker process (musicspace_shared.offload),
which remembers what the index holds (each track's updated_at and content) and hands back only
the changed rows. A new worker (the previous one died) remembers nothing: it answers None and
the manager seeds it again. The same CatalogScanner runs in-process when a manager has no
settings to give a worker (tools, tests of the manager alone).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from musicspace_llm.repository import CatalogRows, load_catalog, moved_since
from musicspace_llm.settings import Settings
from musicspace_shared.db.engine import standalone_session
from musicspace_shared.db.tables import utcnow
from musicspace_shared.offload import run_coroutine

# Full rows are read by id in slices of this many (one IN list each).
ROWS_PER_READ = 1000


@dataclass
class Scan:
    read_from: datetime  # when the key scan began (the next look-back is measured from it)
    scanned: int  # keys at/after the look-back point
    seen: int  # full rows read (their updated_at moved)
    changed: CatalogRows | None  # the rows that are new or differ from the index, if any
    watermark: datetime | None  # the newest updated_at among the rows read


def _contents(rows: CatalogRows) -> list[int]:
    """What the index depends on, per row, as the hash of its fields (floats as bytes, so an
    unknown value, NaN, equals itself): equal hashes mean an unchanged indexed track. Python's
    hash is the same within one process, the one that keeps and compares them (the worker); at
    1M tracks keeping the tuples themselves, with the strings they held, cost 0.55 GB there."""
    f = rows.frame
    return [
        hash(
            (
                f.titles[i],
                f.artists[i],
                f.albums[i],
                f.genres[i],
                f.subgenres[i],
                int(rows.decades[i]),
                f.popularity[i : i + 1].tobytes(),
                f.features[i].tobytes(),
            )
        )
        for i in range(len(f))
    ]


class CatalogScanner:
    """What the index holds, per track id, and the scan against the DB."""

    def __init__(self) -> None:
        self.stamps: dict[str, datetime] = {}
        self.contents: dict[str, int] = {}

    def remember(self, rows: CatalogRows) -> None:
        ids = rows.frame.track_ids
        self.contents.update(zip(ids, _contents(rows), strict=True))
        self.stamps.update((t, u) for t, u in zip(ids, rows.stamps(), strict=True) if u is not None)

    def forget(self, track_ids: list[str]) -> None:
        """These tracks did not reach the index: the next scan meets them again."""
        for track_id in track_ids:
            self.stamps.pop(track_id, None)
            self.contents.pop(track_id, None)

    def reset(self, rows: CatalogRows) -> None:
        """The index holds exactly these rows (a build)."""
        self.stamps.clear()
        self.contents.clear()
        self.remember(rows)

    async def read_all(self, session: AsyncSession) -> CatalogRows:
        rows = await load_catalog(session)
        self.reset(rows)
        return rows

    async def changes(self, session: AsyncSession, since: datetime | None) -> Scan:
        read_from = utcnow()
        moved, scanned = await moved_since(session, since=since, stamps=self.stamps)
        parts = [
            await load_catalog(session, track_ids=moved[i : i + ROWS_PER_READ])
            for i in range(0, len(moved), ROWS_PER_READ)
        ]
        if not parts:
            return Scan(read_from, scanned, 0, None, None)
        rows = CatalogRows.concat(parts)
        ids = rows.frame.track_ids
        differs = [
            i for i, content in enumerate(_contents(rows)) if self.contents.get(ids[i]) != content
        ]
        changed = None
        if differs:
            changed = CatalogRows(rows.frame.subset(differs), rows.decades[differs], rows.watermark)
        self.remember(rows)
        return Scan(read_from, scanned, len(ids), changed, rows.watermark)


# -- in the worker process (musicspace_shared.offload): one scanner per worker --------------
_scanner: CatalogScanner | None = None


def worker_read_all(settings: Settings) -> CatalogRows:
    """Read every track and remember it as indexed (a build, or seeding a new worker)."""
    global _scanner
    scanner = CatalogScanner()

    async def read() -> CatalogRows:
        async with standalone_session(settings) as session:
            return await scanner.read_all(session)

    rows = run_coroutine(read())
    _scanner = scanner
    return rows


def worker_seed(rows: CatalogRows) -> None:
    """The index holds these rows (restored from the vector store, not read from the DB)."""
    global _scanner
    scanner = CatalogScanner()
    scanner.reset(rows)
    _scanner = scanner


def worker_changes(settings: Settings, since: datetime | None) -> Scan | None:
    """The changes since `since`, or None when this worker was never seeded."""
    scanner = _scanner
    if scanner is None:
        return None

    async def scan() -> Scan:
        async with standalone_session(settings) as session:
            return await scanner.changes(session, since)

    return run_coroutine(scan())


def worker_forget(track_ids: list[str]) -> None:
    if _scanner is not None:
        _scanner.forget(track_ids)
