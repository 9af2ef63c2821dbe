"""The process-wide index: built in the background at start, then kept in sync with the DB."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from musicspace_llm.embeddings import Embedder, collection_name
from musicspace_llm.index import TrackIndex
from musicspace_llm.indexing import documents_for, embed_catalog
from musicspace_llm.repository import CatalogRows, load_catalog
from musicspace_llm.store import VectorStore
from musicspace_llm.understanding import QueryUnderstanding
from musicspace_shared.errors import ModelNotReady
from musicspace_shared.logs import log_fields

logger = logging.getLogger("musicspace.llm.index")


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
        self._lock = asyncio.Lock()  # one build/sync at a time
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

    async def _run(self) -> None:
        try:
            await self.build()
        except Exception as exc:  # noqa: BLE001 - reported by /readyz, retried by the loop
            self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"[:300]
            logger.exception("index build failed")
        while self.sync_interval_s > 0:
            await asyncio.sleep(self.sync_interval_s)
            try:
                if self.index is None:
                    await self.build()
                else:
                    await self.sync()
            except Exception as exc:  # noqa: BLE001 - keep serving the last good snapshot
                logger.warning(
                    "index sync failed",
                    extra=log_fields(error=f"{type(exc).__name__}: {exc}"[:300]),
                )

    def _on_progress(self, done: int, total: int) -> None:
        self.progress = (done, total)

    async def build(self) -> dict[str, Any]:
        """Load all tracks, reuse stored vectors, embed the rest; swap in the new snapshot."""
        async with self._lock:
            started = time.perf_counter()
            self.state = "building"
            if self.understanding is None:
                self.understanding = await QueryUnderstanding.build(self.embedder)
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
            self.index, self.state, self.error = index, "ready", None
            summary = {
                "tracks": len(index),
                "embedded": embedded,
                "seconds": round(time.perf_counter() - started, 2),
            }
            logger.info("index built", extra=log_fields(collection=self.collection, **summary))
            return summary

    async def sync(self) -> dict[str, Any]:
        """Upsert tracks added or changed since the watermark; returns what happened."""
        if self.index is None:
            return await self.build()
        async with self._lock:
            current = self.index
            # Look back a little before the watermark: a transaction that committed late with an
            # earlier updated_at (or a replica's clock skew) is still seen; unchanged rows are
            # filtered out below by comparing their documents and features.
            since = (
                current.watermark - timedelta(seconds=self.sync_overlap_s)
                if current.watermark
                else None
            )
            async with self.sessionmaker() as session:
                rows = await load_catalog(session, since=since)
            changed = [
                i
                for i, t in enumerate(rows.frame.track_ids)
                if t not in current.frame.index or _differs(current, rows, i)
            ]
            summary: dict[str, Any] = {
                "seen": len(rows.frame),
                "changed": len(changed),
                "embedded": 0,
            }
            if changed:
                picked = np.array(changed, dtype=np.int64)
                subset = CatalogRows(
                    rows.frame.subset(picked), rows.decades[picked], rows.watermark
                )
                fresh, embedded = await embed_catalog(
                    subset, embedder=self.embedder, store=self.store, batch_size=self.batch_size
                )
                self.index = current.upserted(fresh)
                summary["embedded"] = embedded
            elif rows.watermark is not None and (
                current.watermark is None or rows.watermark > current.watermark
            ):
                current.watermark = (
                    rows.watermark
                )  # only the watermark moves: no reader depends on it
            summary["tracks"] = len(self.index)
            self.last_sync = summary
            if changed:
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


def _differs(index: TrackIndex, rows: CatalogRows, i: int) -> bool:
    """True when row i of `rows` changes the indexed track (document, features or popularity)."""
    position = index.frame.index[rows.frame.track_ids[i]]
    document = documents_for(rows.frame.subset(np.array([i])), rows.decades[[i]])[0]
    old, new = index.frame.popularity[position], rows.frame.popularity[i]
    same_popularity = old == new or (np.isnan(old) and np.isnan(new))
    same_features = np.array_equal(
        index.frame.features[position], rows.frame.features[i], equal_nan=True
    )
    return document != index.documents[position] or not same_popularity or not same_features
