"""A restart resumes from the durable watermark: the index comes back from Chroma, and the
first sync scans only the keys at/after the watermark the previous run stored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import sqlalchemy as sa
from fastapi import FastAPI

from musicspace_llm import saved_index
from musicspace_llm.app import create_app
from musicspace_shared.db.engine import make_engine, make_sessionmaker
from musicspace_shared.db.tables import Track, utcnow
from musicspace_shared.features import FEATURES
from tests.asgi import asgi_client
from tests.factories import create_track

from .helpers import make_settings, wait_ready


async def _started(db_url: str, model_root: Path) -> tuple[FastAPI, object]:
    # No overlap: the look-back is the watermark itself (the fixture imported every track
    # moments ago, all inside the default 300 s window).
    app = create_app(make_settings(db_url, model_root, sync_overlap_s=0.0))
    context = app.router.lifespan_context(app)
    await context.__aenter__()
    await wait_ready(app)
    return app, context


async def _execute(db_url: str, statement: sa.Executable) -> None:
    engine = make_engine(url=db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(statement)
    finally:
        await engine.dispose()


async def test_restart_restores_the_index_and_scans_only_keys_from_the_stored_watermark(
    llm_db_url: str, tmp_path: Path
) -> None:
    # A catalog that changed over time (the fixture imported every track in one instant).
    await _execute(
        llm_db_url,
        sa.text(
            "UPDATE track SET updated_at = "
            "TIMESTAMPADD(SECOND, CRC32(track_id) % 10000000, '2020-01-01')"
        ),
    )
    app, context = await _started(llm_db_url, tmp_path)
    try:
        manager = app.state.runtime.manager
        first = manager.last_sync or {}
        tracks = manager.index.frame.track_ids
        assert manager.status()["sync_from"] is not None
        await manager.sync()
        stored = manager.store.sync_from()
        assert stored is not None and manager.status()["sync_from"] == stored.isoformat()
    finally:
        await context.__aexit__(None, None, None)
    assert first == {}  # the first start read the catalog (no watermark yet): no sync ran

    # While it is down: two tracks re-saved unchanged, one added.
    await _execute(
        llm_db_url,
        sa.update(Track).where(Track.track_id.in_(tracks[:2])).values(updated_at=utcnow()),
    )
    engine = make_engine(url=llm_db_url)
    try:
        async with make_sessionmaker(engine)() as session:
            added = await create_track(
                session,
                title="Restart Quokka",
                artist="The Wombat Brothers",
                genre="rock",
                subgenre="hard rock",
                **dict.fromkeys(FEATURES),
                features_source=None,
            )
        async with engine.connect() as conn:
            at_or_after = (
                await conn.execute(
                    sa.select(sa.func.count()).select_from(Track).where(Track.updated_at >= stored)
                )
            ).scalar_one()
            total = (await conn.execute(sa.select(sa.func.count()).select_from(Track))).scalar_one()
    finally:
        await engine.dispose()

    app, context = await _started(llm_db_url, tmp_path)
    try:
        manager = app.state.runtime.manager
        summary = manager.last_sync
        assert summary["run"] == 1, summary  # the catch-up sync inside the restoring build
        # Only the keys at/after the stored watermark were scanned (not the catalog), only the
        # moved rows read, only the new track embedded.
        assert summary["scanned"] == at_or_after < total / 10, (summary, total)
        assert (summary["seen"], summary["changed"], summary["embedded"]) == (3, 1, 1)
        assert manager.index.frame.track_ids.count(added.track_id) == 1
        assert len(manager.index) == len(tracks) + 1
        assert (await manager.sync())["seen"] == 0
    finally:
        await context.__aexit__(None, None, None)


async def _search(app: FastAPI, query: str) -> list[tuple[str, float]]:
    async with asgi_client(app) as client:
        response = await client.post("/api/llm/search", json={"query": query, "limit": 10})
    assert response.status_code == 200, response.text
    return [(r["track_id"], r["score"]) for r in response.json()["items"]]


async def test_a_restart_maps_the_snapshot_saved_on_the_volume_unless_the_collection_was_rebuilt(
    llm_db_url: str, tmp_path: Path
) -> None:
    """At 1M tracks paging every vector and row out of Chroma took 196 s: a start after the
    first reads the snapshot the first one saved (its vectors memory-mapped). A collection
    rebuilt since (`musicspace index rebuild`: new documents maybe) is read again instead."""
    app, context = await _started(llm_db_url, tmp_path)
    try:
        manager = app.state.runtime.manager
        asked = await _search(app, "upbeat summer dance pop")
        tracks = len(manager.index)
        assert not isinstance(manager.index.vectors, np.memmap)
    finally:
        await context.__aexit__(None, None, None)  # waits for the save the build began
    snapshot = saved_index.snapshot_dir(manager._settings)
    assert len(list(snapshot.glob("*.pkl"))) == 1 and len(list(snapshot.glob("*.npy"))) == 1

    app, context = await _started(llm_db_url, tmp_path)
    try:
        manager = app.state.runtime.manager
        assert manager.status()["last_build"]["restored_from"] == "snapshot"
        assert isinstance(manager.index.vectors, np.memmap)
        assert not manager.index.vectors.flags.writeable
        assert len(manager.index) == tracks
        assert manager.last_sync["changed"] == 0
        assert await _search(app, "upbeat summer dance pop") == asked
        # A rebuild of the collection (the CLI resets it, writes every vector, then the mark).
        store = manager.store
        kept = store.load(None)
        mark = store.sync_from()
        store.reset()
        store.upsert(
            ids=kept.ids,
            vectors=kept.vectors,
            documents=["" for _ in kept.ids],
            metadatas=[
                {"doc_hash": h, "row": r} for h, r in zip(kept.hashes, kept.rows, strict=True)
            ],
        )
        store.set_sync_from(mark)
    finally:
        await context.__aexit__(None, None, None)

    app, context = await _started(llm_db_url, tmp_path)
    try:
        manager = app.state.runtime.manager
        assert manager.status()["last_build"]["restored_from"] == "collection"
        assert not isinstance(manager.index.vectors, np.memmap)
        assert await _search(app, "upbeat summer dance pop") == asked
    finally:
        await context.__aexit__(None, None, None)
    # ... and saved again for that collection: one snapshot, its older vectors removed.
    assert len(list(snapshot.glob("*.npy"))) == 1


async def test_at_ann_scale_the_start_asks_the_collection_once_before_ready(
    llm_db_url: str, tmp_path: Path
) -> None:
    """Chroma reads a collection's HNSW index on its first query: the start makes that one."""
    app = create_app(make_settings(llm_db_url, tmp_path, ann_min_tracks=1))
    async with app.router.lifespan_context(app):
        await wait_ready(app)
        build = app.state.runtime.manager.status()["last_build"]
    assert build["ann"] is True and build["first_nearest_query_s"] >= 0
