"""Building and syncing the index: DB rows -> documents -> vectors -> Chroma -> memory.

Sync design (documented in services/llm/README.md):
- start: when the collection holds a durable watermark (its metadata "sync_from") and every
  vector its track's row (metadata "row"), restore the index from the collection and sync from
  the watermark; else load every track from the DB and every stored vector from the collection
  and embed only tracks whose document hash differs or that have no vector yet (the first
  start embeds the whole catalog, in the background: /readyz says "index: building i/n");
- then, every LLM_CATALOG_CHECK_S seconds, scan the (track_id, updated_at) keys from the
  look-back point, read only the tracks whose updated_at moved, re-embed those whose document
  changed, upsert them by track_id into Chroma and swap in a new in-memory snapshot
  (manager.py: incremental, off the serving process, durable, coalesced);
- POST /api/llm/index/sync (admin) asks for the same step at once, e.g. right after enrichment;
- `musicspace index rebuild` drops the collection and rebuilds it from the DB.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from musicspace_llm.documents import document_hash, track_document
from musicspace_llm.embeddings import Embedder, GeminiEmbedder, OfflineEmbedder, collection_name
from musicspace_llm.index import TrackIndex
from musicspace_llm.repository import CatalogRows, load_catalog, row_record
from musicspace_llm.settings import Settings
from musicspace_llm.store import VectorStore, make_client
from musicspace_shared.catalog import TrackFrame
from musicspace_shared.db.engine import make_engine, make_sessionmaker

logger = logging.getLogger("musicspace.llm.indexing")
Progress = Callable[[int, int], None]


def make_embedder(settings: Settings) -> Embedder:
    """The configured provider: Gemini with a key (or when forced), else the offline model."""
    if settings.use_gemini:
        key = settings.gemini_key
        if not key:
            raise ValueError("LLM_PROVIDER=gemini needs GOOGLE_API_KEY or GOOGLE_API_KEY_FILE")
        return GeminiEmbedder(
            api_key=key,
            model=settings.gemini_embedding_model,
            dim=settings.gemini_embedding_dim,
            base_url=settings.gemini_base_url,
            max_retries=settings.gemini_retries,
            timeout_s=settings.gemini_timeout_s,
        )
    return OfflineEmbedder(threads=settings.offline_threads)


def documents_for(frame: TrackFrame, decades: np.ndarray) -> list[str]:
    return [
        track_document(
            title=frame.titles[i],
            artist=frame.artists[i],
            album=frame.albums[i],
            genre=frame.genres[i],
            subgenre=frame.subgenres[i],
            features=frame.features[i],
            year=int(decades[i]) or None,
        )
        for i in range(len(frame))
    ]


async def embed_catalog(
    rows: CatalogRows,
    *,
    embedder: Embedder,
    store: VectorStore | None = None,
    batch_size: int = 256,
    progress: Progress | None = None,
) -> tuple[TrackIndex, int]:
    """An index of `rows`, reusing stored vectors whose document is unchanged; (index, embedded)."""
    frame = rows.frame
    documents = documents_for(frame, rows.decades)
    hashes = [document_hash(d) for d in documents]
    vectors = np.zeros((len(frame), embedder.dim), dtype=np.float32)
    todo = list(range(len(frame)))
    records = [row_record(frame, i) for i in range(len(frame))] if store is not None else []
    stale: list[int] = []  # vector still right, stored row not (e.g. popularity moved)
    if store is not None and len(frame):
        stored = await asyncio.to_thread(store.load, frame.track_ids)
        if stored.vectors.ndim == 2 and stored.vectors.shape[1] == embedder.dim:
            known = {t: i for i, t in enumerate(stored.ids)}
            todo = []
            for row, track_id in enumerate(frame.track_ids):
                at = known.get(track_id)
                if at is not None and stored.hashes[at] == hashes[row]:
                    vectors[row] = stored.vectors[at]
                    if stored.rows[at] != records[row]:
                        stale.append(row)
                else:
                    todo.append(row)

    def metadata(r: int) -> dict[str, str]:
        return {
            "doc_hash": hashes[r],
            "genre": frame.genres[r],
            "subgenre": frame.subgenres[r],
            "row": records[r],
        }

    if store is not None and stale:
        await asyncio.to_thread(
            store.update_rows, [frame.track_ids[r] for r in stale], [metadata(r) for r in stale]
        )
    # Each batch is written to the store while the next one is embedded (a Chroma server
    # indexes on its own cores; an embedded one mostly in C++): the build costs about the
    # embedding alone instead of the sum. One write at a time, in order.
    writing: asyncio.Future[None] | None = None
    try:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            fresh = await embedder.embed_documents([documents[r] for r in chunk])
            vectors[chunk] = fresh
            if store is not None:
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(
                    asyncio.to_thread(
                        store.upsert,
                        ids=[frame.track_ids[r] for r in chunk],
                        vectors=fresh,
                        documents=[documents[r] for r in chunk],
                        metadatas=[metadata(r) for r in chunk],
                    )
                )
            if progress is not None:
                progress(min(start + batch_size, len(todo)), len(todo))
    finally:
        if writing is not None:
            await writing  # a write under way finishes (a thread cannot be stopped) or raises
    index = TrackIndex(
        frame=frame,
        decades=rows.decades,
        vectors=vectors,
        watermark=rows.watermark,
    )
    return index, len(todo)


async def rebuild_from_db(settings: Settings | None = None) -> dict[str, Any]:
    """Drop the configured provider/model's collection and rebuild it from every track in the DB."""
    settings = settings or Settings()
    embedder = make_embedder(settings)
    store = VectorStore(make_client(settings), collection_name(embedder))
    engine = make_engine(settings)
    try:
        async with make_sessionmaker(engine)() as session:
            rows = await load_catalog(session)
    finally:
        await engine.dispose()
    await asyncio.to_thread(store.reset)
    index, embedded = await embed_catalog(
        rows, embedder=embedder, store=store, batch_size=settings.index_batch_size
    )
    return {
        "collection": store.name,
        "provider": embedder.provider,
        "model": embedder.model,
        "tracks": len(index),
        "embedded": embedded,
        "stored": await asyncio.to_thread(store.count),
    }
