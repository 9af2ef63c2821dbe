"""The process-wide index: built (or restored) in the background at start, then kept in sync.

A sync never stalls serving (measured by bench/bench_sync.py):
- incremental: it scans only the (track_id, updated_at) keys at or after its look-back point
  (the watermark, or the start of the previous read minus LLM_SYNC_OVERLAP_S while that is
  earlier, for transactions that commit late), and reads full rows only for the tracks whose
  updated_at differs from the one indexed; of those, only tracks whose content differs are
  re-embedded and swapped into a new snapshot;
- off the serving process: the key scan, the row reads and the comparison run in the service's
  nice-10 worker process (scan.py, musicspace_shared.offload), which remembers what the index
  holds and hands back only the changed rows; embedding, Chroma and the new snapshot run in
  threads, the snapshot keeps every track in its row and, when no name changed, the previous
  name indexes. Once a snapshot's name indexes are built, gc.freeze() moves it out of the
  collector's reach (full collections over it stopped the loop for 0.35-0.9 s);
- durable: the collection's metadata holds where the next key scan starts, and each vector's
  metadata its track's row, so a restart restores the index from Chroma and its first sync
  scans only the keys at/after that point (no re-read or re-compare of the catalog);
- coalesced: one sync runs at a time; requests during a run fold into one queued run, which
  starts LLM_SYNC_MIN_GAP_S (1 s) after the previous one ended (musicspace_shared.coalesce);
  POST /api/llm/index/sync answers at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from musicspace_llm import ann, saved_index
from musicspace_llm.ann import ANN_MIN_TRACKS, StoreNeighbours
from musicspace_llm.embeddings import Embedder, collection_name
from musicspace_llm.index import TrackIndex
from musicspace_llm.indexing import embed_catalog
from musicspace_llm.repository import CatalogRows, rows_from_records
from musicspace_llm.scan import (
    CatalogScanner,
    Scan,
    worker_changes,
    worker_forget,
    worker_read_all,
    worker_seed,
)
from musicspace_llm.settings import Settings
from musicspace_llm.store import VectorStore
from musicspace_llm.understanding import QueryUnderstanding
from musicspace_shared.coalesce import Coalescer
from musicspace_shared.cpu import CpuPool
from musicspace_shared.db.tables import utcnow
from musicspace_shared.errors import ModelNotReady
from musicspace_shared.forked import run_forked
from musicspace_shared.heap import release_free_memory
from musicspace_shared.logs import log_fields
from musicspace_shared.offload import ProcessOffload

logger = logging.getLogger("musicspace.llm.index")

SAVE_TASK = "llm-index-save"


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
        settings: Settings | None = None,
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
        self._warmed_once = False  # the first snapshot served has warmed (readiness)
        # The snapshot on the volume (saved_index.py): a save under way, when the last began.
        self._saving, self._saved_at = False, time.monotonic()
        self.last_sync: dict[str, Any] = {}
        self.last_build: dict[str, Any] = {}  # the first load or restore: how, and how long
        # The DB side of a sync (scan.py): in a worker process when there are settings to
        # give it, else here (a manager built by hand, e.g. in a tool).
        self._settings = settings
        self._ann_min_tracks = settings.ann_min_tracks if settings is not None else ANN_MIN_TRACKS
        self._offload = ProcessOffload() if settings is not None else None
        self._scanner = CatalogScanner() if settings is None else None
        self._read_from: datetime | None = None  # when the last complete read began
        # The durable watermark (Chroma collection metadata): after a restart, the index comes
        # back from the collection and the first sync scans from here; then _look_back().
        self._resume_from: datetime | None = None
        self._persisted: datetime | None = None
        self._refreshes: Coalescer[dict[str, Any]] = Coalescer(
            self._refresh, name="llm-index", min_gap_s=sync_min_gap_s
        )
        self._tasks: list[asyncio.Task] = []
        # Searches rank here, one thread per core: asyncio's default pool (cores + 4 threads)
        # ran six at once on two cores, each taking the GIL from the others every millisecond
        # (bench: gateway p99 at 8 clients 98-131 ms with six, 79-86 ms with two).
        self.cpu = CpuPool(name="llm-search")

    @property
    def collection(self) -> str:
        return collection_name(self.embedder)

    def readiness(self) -> str | None:
        """None when searchable, else why not (shown by /readyz)."""
        index = self.index
        if (
            index is not None
            and self.understanding is not None
            and self.state != "building"  # restored, catching up with the DB
        ):
            if self._warmed_once or index.warmed.is_set():
                # Later snapshots warm while the one before serves: ready stays ready.
                self._warmed_once = True
                return None
            # Searches would wait for the name indexes and the other parts warm() builds (at
            # 1M, tens of seconds): a load balancer sends none here until they are built.
            return "index: warming"
        if self.state == "failed":
            return f"index: failed ({self.error})"
        done, total = self.progress
        return f"index: {self.state} {done}/{total}" if total else f"index: {self.state}"

    def require(self) -> tuple[TrackIndex, QueryUnderstanding]:
        index = self.index
        if index is None or self.understanding is None:
            raise ModelNotReady(self.readiness() or "index not ready")
        if index.neighbours is None and len(index) >= self._ann_min_tracks:
            index.neighbours = StoreNeighbours(self.store, index.frame.index)
        return index, self.understanding

    def start(self) -> None:
        """Build (or load) in the background, then poll for changed tracks."""
        self._tasks.append(asyncio.create_task(self._run(), name="llm-index"))

    async def stop(self) -> None:
        tasks = list(self._tasks)  # settle tasks remove themselves when done
        for task in tasks:
            if task.get_name() != SAVE_TASK:  # a save under way finishes (its thread would)
                task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        await self._refreshes.stop()
        if self._offload is not None:
            self._offload.close()
        self.cpu.close()

    async def _read_all(self) -> CatalogRows:
        if self._offload is None:
            assert self._scanner is not None
            async with self.sessionmaker() as session:
                return await self._scanner.read_all(session)
        return await self._offload.run(worker_read_all, self._settings)

    async def _changes(self, since: datetime | None) -> Scan | None:
        if self._offload is None:
            assert self._scanner is not None
            async with self.sessionmaker() as session:
                return await self._scanner.changes(session, since)
        return await self._offload.run(worker_changes, self._settings, since)

    async def _seed(self, rows: CatalogRows) -> None:
        if self._offload is None:
            assert self._scanner is not None
            self._scanner.reset(rows)
        else:
            await self._offload.run(worker_seed, rows)

    async def _forget(self, track_ids: list[str]) -> None:
        if self._offload is None:
            assert self._scanner is not None
            self._scanner.forget(track_ids)
        else:
            await self._offload.run(worker_forget, track_ids)

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
        """Restore the index from the vector store and catch up from the durable watermark;
        or, without one, load all tracks, reuse stored vectors and embed the rest."""
        started = time.perf_counter()
        self.state = "building"
        try:
            if self.understanding is None:
                self.understanding = await QueryUnderstanding.build(self.embedder)
            summary = await self._restore()
            if summary is None:
                summary = await self._load()
            summary |= await self._first_nearest_query()
        except Exception as exc:
            self.index = None
            self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"[:300]
            raise
        assert self.index is not None
        summary |= {"tracks": len(self.index), "seconds": round(time.perf_counter() - started, 2)}
        self.last_build = summary  # before "ready": status shows it to whoever sees ready
        self.state, self.error = "ready", None
        self._settle(self.index)
        # Saved at once unless the snapshot on the volume was restored and nothing changed since.
        restored_as_saved = summary.get("restored_from") == "snapshot" and not summary["sync"].get(
            "changed"
        )
        self._save_later(self.index, at_once=not restored_as_saved)
        # What the build or restore allocated and freed (1M stored rows parsed, the pages read
        # from Chroma) stays with glibc otherwise: a 1M-track restore gave back 2.3 GB of 9.7.
        await asyncio.to_thread(release_free_memory)
        logger.info("index built", extra=log_fields(collection=self.collection, **summary))
        return summary

    async def _load(self) -> dict[str, Any]:
        read_from = utcnow()
        rows = await self._read_all()
        self.progress = (0, len(rows.frame))
        index, embedded = await embed_catalog(
            rows,
            embedder=self.embedder,
            store=self.store,
            batch_size=self.batch_size,
            progress=self._on_progress,
        )
        self._read_from, self.index = read_from, index
        await self._persist()
        return {"read": len(rows.frame), "embedded": embedded}

    async def _restore(self) -> dict[str, Any] | None:
        """The index from the snapshot saved on the volume (saved_index.py) or else from the
        collection (vectors and each track's row) when it has a durable watermark and a row
        for every vector; then a sync from the point the restored state was saved at."""
        since = await asyncio.to_thread(self.store.sync_from)
        if since is None:
            return None
        saved = await asyncio.to_thread(self._load_saved)
        if saved is not None:
            rows, vectors, since, source = saved.rows, saved.vectors, saved.sync_from, "snapshot"
            names = saved.names
        else:
            stored = await asyncio.to_thread(self.store.load, None)
            if (
                not stored.ids
                or any(r is None for r in stored.rows)
                or stored.vectors.ndim != 2
                or stored.vectors.shape[1] != self.embedder.dim
            ):
                return None
            rows = await asyncio.to_thread(rows_from_records, stored.ids, stored.rows)  # type: ignore[arg-type]
            vectors, source, names = stored.vectors, "collection", None
        await self._seed(rows)
        self.index = TrackIndex(
            frame=rows.frame,
            decades=rows.decades,
            vectors=vectors,
            watermark=rows.watermark,
            names=names,
        )
        self._resume_from = since
        caught_up = await self._sync_once()
        return {
            "restored": len(rows.frame),
            "restored_from": source,
            "sync_from": since.isoformat(),
            "sync": caught_up,
        }

    async def _first_nearest_query(self) -> dict[str, Any]:
        """At ANN scale, one nearest-neighbour query before ready: Chroma reads a collection's
        HNSW index from disk on its first query (GBs at 1M tracks), not the first search."""
        index = self.index
        if index is None or len(index) < self._ann_min_tracks:
            return {}
        started = time.perf_counter()
        neighbours = StoreNeighbours(self.store, index.frame.index)
        found = await asyncio.to_thread(ann.nearest, neighbours, [index.vectors[0]], 1)
        return {
            "first_nearest_query_s": round(time.perf_counter() - started, 2),
            "ann": found is not None,
        }

    def _load_saved(self) -> saved_index.SavedIndex | None:
        if self._settings is None:
            return None
        return saved_index.load(
            self._settings,
            self.collection,
            self.store.identity(),
            dim=self.embedder.dim,
            stored=self.store.count(),
            durable=True,
        )

    def _save_later(self, index: TrackIndex, *, at_once: bool = False) -> None:
        """Save `index` on the volume once it has warmed, off the event loop: at once after a
        build or a restore from the collection, else at most every LLM_SNAPSHOT_SAVE_S after
        syncs that changed it (at 1M a save writes 2 GB of vectors)."""
        settings = self._settings
        if settings is None or settings.snapshot_save_s <= 0 or self._saving:
            return
        if not at_once and time.monotonic() - self._saved_at < settings.snapshot_save_s:
            return
        sync_from = self._look_back(index)
        if sync_from is None:
            return
        self._saving, self._saved_at = True, time.monotonic()
        store_id = self.store.identity()

        def save() -> None:
            index.warmed.wait()
            # Packing 1M rows takes seconds of the interpreter lock: done in a forked child
            # with a lock of its own, or the event loop waits for it at every switch (forked.py).
            run_forked(
                lambda: saved_index.save(settings, self.collection, store_id, index, sync_from)
            )
            release_free_memory()

        async def run() -> None:
            try:
                await asyncio.to_thread(save)
            except Exception:  # noqa: BLE001 - the next start restores from the collection
                logger.warning("saving the index snapshot failed", exc_info=True)
            finally:
                self._saving = False

        task = asyncio.create_task(run(), name=SAVE_TASK)
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

    async def _persist(self) -> None:
        """Store where the next sync starts, when it moved (Chroma collection metadata)."""
        assert self.index is not None
        point = self._look_back(self.index)
        if point is None or point == self._persisted:
            return
        try:
            await asyncio.to_thread(self.store.set_sync_from, point)
        except Exception:  # noqa: BLE001 - the stored watermark lags: a restart scans more
            logger.warning("storing the index watermark failed", exc_info=True)
            return
        self._persisted = point

    def _settle(self, index: TrackIndex) -> None:
        """Once the snapshot's name indexes are built, move every object alive into the
        garbage collector's permanent generation (gc.freeze). A snapshot is ~190k tracked
        objects (no cycles: dropped by reference counting); left in gen 2, each full
        collection walked them all, 0.35-0.9 s with the event loop stopped (gc callbacks)."""

        async def settle() -> None:
            await asyncio.to_thread(index.warm)
            if self.index is index:
                gc.freeze()

        task = asyncio.create_task(settle(), name="llm-index-settle")
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

    def _look_back(self, current: TrackIndex) -> datetime | None:
        """Where the key scan starts: the watermark, or earlier while a late commit could land."""
        if self._resume_from is not None:
            return self._resume_from
        if self._read_from is None:
            return None
        horizon = self._read_from - timedelta(seconds=self.sync_overlap_s)
        return min(current.watermark, horizon) if current.watermark else horizon

    async def _sync_once(self) -> dict[str, Any]:
        started = time.perf_counter()
        current = self.index
        assert current is not None
        summary: dict[str, Any] = {
            "run": self._refreshes.runs + 1,  # runs since start, the first build included
            "scanned": 0,
            "seen": 0,
            "changed": 0,
            "embedded": 0,
        }
        scan = await self._changes(self._look_back(current))
        if scan is None:  # a new worker (the last one died): seed it, compare every row here
            read_from = utcnow()
            rows = await self._read_all()
            changed = await asyncio.to_thread(_changed_rows, current, rows)
            summary |= {"scanned": len(rows.frame), "seen": len(rows.frame)}
            fresh_rows = (
                CatalogRows(rows.frame.subset(changed), rows.decades[changed], rows.watermark)
                if len(changed)
                else None
            )
            watermark = rows.watermark
        else:
            read_from, fresh_rows, watermark = scan.read_from, scan.changed, scan.watermark
            summary |= {"scanned": scan.scanned, "seen": scan.seen}
        if fresh_rows is not None:
            summary["changed"] = len(fresh_rows.frame)
            try:
                fresh, summary["embedded"] = await embed_catalog(
                    fresh_rows,
                    embedder=self.embedder,
                    store=self.store,
                    batch_size=self.batch_size,
                )
                self.index = await asyncio.to_thread(current.upserted, fresh)
                self._settle(self.index)
                self._save_later(self.index)
            except Exception:
                # The scanner took them as indexed: the next sync must meet them again.
                with contextlib.suppress(Exception):
                    await self._forget(fresh_rows.frame.track_ids)
                raise
        if watermark is not None and (current.watermark is None or watermark > current.watermark):
            # Only the watermark moves when no content changed: no reader depends on it.
            self.index.watermark = max(watermark, self.index.watermark or watermark)
        self._read_from, self._resume_from = read_from, None
        await self._persist()
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
            "sync_from": self._persisted.isoformat() if self._persisted else None,
            "progress": list(self.progress),
            "last_sync": self.last_sync,
            "last_build": self.last_build,
            "error": self.error,
        }


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
