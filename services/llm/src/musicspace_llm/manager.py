"""The process-wide index: built in the background at start, then kept in sync with the DB.

A sync never stalls serving (measured by bench/bench_sync.py):
- incremental: it scans only the (track_id, updated_at) keys at or after its look-back point
  (the watermark, or the start of the previous read minus LLM_SYNC_OVERLAP_S while that is
  earlier, for transactions that commit late), and reads full rows only for the tracks whose
  updated_at differs from the one indexed: an unchanged catalog costs a key scan of the few
  rows at the watermark, not a re-read of 28k tracks;
- bounded: the DB is read as a stream of pages (the event loop serves requests between them);
  comparing rows, embedding, Chroma and building the new snapshot run in worker threads;
- coalesced: one sync runs at a time; requests during a run fold into one queued run, which
  starts LLM_SYNC_MIN_GAP_S (1 s) after the previous one ended (musicspace_shared.coalesce);
  POST /api/llm/index/sync answers at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from musicspace_llm.embeddings import Embedder, collection_name
from musicspace_llm.index import TrackIndex
from musicspace_llm.indexing import embed_catalog
from musicspace_llm.repository import CatalogRows, load_catalog, moved_since
from musicspace_llm.store import VectorStore
from musicspace_llm.understanding import QueryUnderstanding
from musicspace_shared.coalesce import Coalescer
from musicspace_shared.db.tables import utcnow
from musicspace_shared.errors import ModelNotReady
from musicspace_shared.logs import log_fields

logger = logging.getLogger("musicspace.llm.index")
# Full rows are read by id in slices of this many (one IN list each).
ROWS_PER_READ = 1000


class IndexManager:
    def __init__(
        self,
        *,
        embedder: Embedder,
        store: VectorStore,
        sessionmaker: async_sessionmaker[AsyncSession],
        batch_size: int = 256,
        sync_interval_s: float = 30.0,
        sync_overlap_s: float = 300.0,
        sync_min_gap_s: float = 1.0,
    ) -> None:
        self.sync_overlap_s = sync_overlap_s
        self.embedder = embedder
        self.store = store
        self.sessionmaker = sessionmaker
        self.batch_size = batch_size
        self.sync_interval_s = sync_interval_s
        self.index: TrackIndex | None = None
        self.understanding: QueryUnderstanding | None = None
        self.state = "starting"
        self.progress = (0, 0)
        self.error: str | None = None
        self.last_sync: dict[str, Any] = {}
        # updated_at of every indexed track, as read: a key scan compares against it.
        self._stamps: dict[str, datetime] = {}
        self._read_from: datetime | None = None  # when the last complete read began
        self._refreshes: Coalescer[dict[str, Any]] = Coalescer(
            self._refresh, name="llm-index", min_gap_s=sync_min_gap_s
        )
        self._tasks: list[asyncio.Task] = []

    @property
    def collection(self) -> str:
        return collection_name(self.embedder)

    def readiness(self) -> str | None:
        """None when searchable, else why not (shown by /readyz)."""
        if self.index is not None and self.understanding is not None:
            return None
        if self.state == "failed":
            return f"index: failed ({self.error})"
        done, total = self.progress
        return f"index: {self.state} {done}/{total}" if total else f"index: {self.state}"

    def require(self) -> tuple[TrackIndex, QueryUnderstanding]:
        if self.index is None or self.understanding is None:
            raise ModelNotReady(self.readiness() or "index not ready")
        return self.index, self.understanding

    def start(self) -> None:
        """Build (or load) in the background, then poll for changed tracks."""
        self._tasks.append(asyncio.create_task(self._run(), name="llm-index"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        await self._refreshes.stop()

    async def _run(self) -> None:
        try:
            await self._refreshes.run()
        except Exception:  # noqa: BLE001 - reported by /readyz, retried by the loop
            logger.exception("index build failed")
        while self.sync_interval_s > 0:
            await asyncio.sleep(self.sync_interval_s)
            try:
                await self._refreshes.run()
            except Exception:  # noqa: BLE001 - logged by the coalescer; keep serving the last snapshot
                pass

    def _on_progress(self, done: int, total: int) -> None:
        self.progress = (done, total)

    async def build(self) -> dict[str, Any]:
        """The first load, or a sync once an index exists (one at a time, see sync())."""
        return await self._refreshes.run()

    async def sync(self) -> dict[str, Any]:
        """Upsert tracks added or changed since the watermark and wait for the result."""
        return await self._refreshes.run()

    async def idle(self) -> None:
        """Until no sync runs or waits (tests)."""
        await self._refreshes.idle()

    def request_sync(self) -> dict[str, Any]:
        """Ask for a sync without waiting: how it was taken, and the last one's summary."""
        accepted, _ = self._refreshes.request()
        return {
            "accepted": accepted,
            "running": self._refreshes.running,
            "pending": self._refreshes.pending,
            "last_sync": self.last_sync,
        }

    async def _refresh(self) -> dict[str, Any]:
        return await self._build() if self.index is None else await self._sync_once()

    async def _build(self) -> dict[str, Any]:
        """Load all tracks, reuse stored vectors, embed the rest; swap in the new snapshot."""
        started = time.perf_counter()
        self.state = "building"
        try:
            if self.understanding is None:
                self.understanding = await QueryUnderstanding.build(self.embedder)
            read_from = utcnow()
            async with self.sessionmaker() as session:
                rows = await load_catalog(session)
            self.progress = (0, len(rows.frame))
            index, embedded = await embed_catalog(
                rows,
                embedder=self.embedder,
                store=self.store,
                batch_size=self.batch_size,
                progress=self._on_progress,
            )
        except Exception as exc:
            self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"[:300]
            raise
        self._stamps = _stamps(rows)
        self._read_from = read_from
        self.index, self.state, self.error = index, "ready", None
        summary = {
            "tracks": len(index),
            "embedded": embedded,
            "seconds": round(time.perf_counter() - started, 2),
        }
        logger.info("index built", extra=log_fields(collection=self.collection, **summary))
        return summary

    def _look_back(self, current: TrackIndex) -> datetime | None:
        """Where the key scan starts: the watermark, or earlier while a late commit could land."""
        if self._read_from is None:
            return None
        horizon = self._read_from - timedelta(seconds=self.sync_overlap_s)
        return min(current.watermark, horizon) if current.watermark else horizon

    async def _sync_once(self) -> dict[str, Any]:
        started = time.perf_counter()
        current = self.index
        assert current is not None
        read_from = utcnow()
        async with self.sessionmaker() as session:
            moved, scanned = await moved_since(
                session, since=self._look_back(current), stamps=self._stamps
            )
            parts = [
                await load_catalog(session, track_ids=moved[i : i + ROWS_PER_READ])
                for i in range(0, len(moved), ROWS_PER_READ)
            ]
        summary: dict[str, Any] = {
            "run": self._refreshes.runs + 1,  # runs since start, the first build included
            "scanned": scanned,
            "seen": 0,
            "changed": 0,
            "embedded": 0,
        }
        if parts:
            rows = CatalogRows.concat(parts)
            changed = await asyncio.to_thread(_changed_rows, current, rows)
            summary |= {"seen": len(rows.frame), "changed": len(changed)}
            if len(changed):
                subset = CatalogRows(
                    rows.frame.subset(changed), rows.decades[changed], rows.watermark
                )
                fresh, summary["embedded"] = await embed_catalog(
                    subset, embedder=self.embedder, store=self.store, batch_size=self.batch_size
                )
                self.index = await asyncio.to_thread(current.upserted, fresh)
            if rows.watermark is not None and (
                current.watermark is None or rows.watermark > current.watermark
            ):
                # Only the watermark moves when no content changed: no reader depends on it.
                self.index.watermark = max(rows.watermark, self.index.watermark or rows.watermark)
            self._stamps.update(_stamps(rows))
        self._read_from = read_from
        summary["tracks"] = len(self.index)
        summary["seconds"] = round(time.perf_counter() - started, 3)
        self.last_sync = summary
        if summary["changed"]:
            logger.info("index synced", extra=log_fields(**summary))
        return summary

    def status(self) -> dict[str, Any]:
        index = self.index
        return {
            "state": self.state,
            "collection": self.collection,
            "provider": self.embedder.provider,
            "model": self.embedder.model,
            "tracks": len(index) if index else 0,
            "watermark": index.watermark.isoformat() if index and index.watermark else None,
            "progress": list(self.progress),
            "last_sync": self.last_sync,
            "error": self.error,
        }


def _stamps(rows: CatalogRows) -> dict[str, datetime]:
    return {t: u for t, u in zip(rows.frame.track_ids, rows.stamps(), strict=True) if u is not None}


# What a track's document is made of (documents.track_document), besides features and decade.
_TEXT_FIELDS = ("titles", "artists", "albums", "genres", "subgenres")


def _changed_rows(index: TrackIndex, rows: CatalogRows) -> np.ndarray:
    """Positions in `rows` of tracks that are new or change the indexed track: a field its
    document is made of, its features or its popularity. The fields are compared, not the
    documents (building 28k documents took ~0.5 s of the interpreter; comparing, ~0.05 s)."""
    frame = rows.frame
    positions = np.array([index.frame.index.get(t, -1) for t in frame.track_ids], dtype=np.int64)
    known = positions >= 0
    at = positions[known]
    differs = np.zeros(int(known.sum()), dtype=bool)
    mine = np.flatnonzero(known)
    for name in _TEXT_FIELDS:
        old, new = getattr(index.frame, name), getattr(frame, name)
        differs |= np.fromiter(
            (old[p] != new[i] for p, i in zip(at, mine, strict=True)), dtype=bool, count=len(at)
        )
    differs |= index.decades[at] != rows.decades[mine]
    differs |= ~_same(index.frame.popularity[at], frame.popularity[mine])
    differs |= ~_same(index.frame.features[at], frame.features[mine]).all(axis=1)
    changed = ~known
    changed[mine] = differs
    return np.flatnonzero(changed).astype(np.int64)


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise equality where NaN equals NaN (unknown stays unknown)."""
    return (a == b) | (np.isnan(a) & np.isnan(b))
