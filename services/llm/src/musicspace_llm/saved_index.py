"""The search index kept on the model volume, so a restart reads two files instead of paging
every vector and row out of Chroma (issue 18: at 1M tracks that restore took 196 s).

<model_root>/LLM/snapshot/<collection>.pkl holds a JSON header (the collection, the vectors'
file, how many tracks, and `sync_from`: the point from which a sync catches up with everything
the snapshot lacks), then the rows and the name indexes built from them (at 1M tracks 53 s to
build, seconds to load; musicspace_shared.saved_state); the vectors are a .npy
file of their own beside it, memory-mapped read-only when loaded: their pages are the kernel's
page cache, shared by the replicas of one host and never copied into the process.

The file may be older than the collection: the restore then syncs from the file's `sync_from`,
and a sync re-embeds only what changed (its vectors are reused from the collection by document
hash), so an old file costs a longer first sync, never a wrong index. It is not used when the
collection does not hold at least as many vectors as the file has tracks or has no durable
watermark (emptied, or being rebuilt): the nearest-neighbour queries at scale go to the
collection, which must hold every track the file serves.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from musicspace_llm.index import TrackIndex
from musicspace_llm.repository import CatalogRows
from musicspace_llm.settings import Settings
from musicspace_shared import saved_state
from musicspace_shared.logs import log_fields
from musicspace_shared.model_store import atomic_write

logger = logging.getLogger("musicspace.llm.saved_index")

FORMAT = 3  # bump when CatalogRows, the name indexes or the header change shape


@dataclass
class SavedIndex:
    rows: CatalogRows
    vectors: np.ndarray  # read-only memory map
    sync_from: datetime
    names: dict[str, Any]  # TrackIndex.name_parts: at 1M tracks, 53 s to build again


def snapshot_dir(settings: Settings) -> Path:
    return settings.model_dir("LLM") / "snapshot"


def _header_path(settings: Settings, collection: str) -> Path:
    return snapshot_dir(settings) / f"{collection}.pkl"


def save(
    settings: Settings, collection: str, store_id: str, index: TrackIndex, sync_from: datetime
) -> bool:
    """Write `index` as the collection's saved snapshot (`store_id`: the collection's id in
    Chroma, new after every rebuild); a full or read-only volume is logged, not raised (the
    next start restores from Chroma instead)."""
    directory = snapshot_dir(settings)
    vectors_name = f"{collection}-{secrets.token_hex(6)}.npy"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        vectors = np.ascontiguousarray(index.vectors, dtype=np.float32)
        atomic_write(directory / vectors_name, lambda handle: np.save(handle, vectors))
    except OSError as exc:
        logger.warning("index snapshot not saved", extra=log_fields(error=str(exc)[:200]))
        return False
    header = {
        "collection": collection,
        "store_id": store_id,
        "vectors": vectors_name,
        "tracks": len(index),
        "dim": int(index.vectors.shape[1]),
        "sync_from": sync_from.isoformat(),
    }
    state = {
        "rows": CatalogRows(index.frame, index.decades, index.watermark),
        "names": index.name_parts(),
    }
    saved = saved_state.save_logged(
        _header_path(settings, collection), header, state, version=FORMAT
    )
    _remove_stale_vectors(directory, collection, keep=vectors_name if saved else None)
    return saved


def _remove_stale_vectors(directory: Path, collection: str, keep: str | None) -> None:
    """Vector files of this collection older than the one kept (a replica saving beside this
    one may have written a newer one: left alone). A memory map of a removed file stays valid.
    Two replicas saving at once can leave a header naming a file the other removed: the next
    start then restores from the collection (logged), as without a snapshot."""
    kept = directory / keep if keep else None
    if kept is None or not kept.exists():
        return  # not saved: what is there stays for the header that names it
    newest = kept.stat().st_mtime
    for path in directory.glob(f"{collection}-*.npy"):
        try:
            if path != kept and path.stat().st_mtime <= newest:
                path.unlink()
        except OSError:
            pass


def load(
    settings: Settings, collection: str, store_id: str, *, dim: int, stored: int, durable: bool
) -> SavedIndex | None:
    """The collection's saved snapshot, if there is one the collection can serve beside: saved
    from the same collection (`store_id`: not rebuilt since, which may change every document),
    which holds `stored` vectors and a durable watermark (`durable`), for the embedder's `dim`."""
    path = _header_path(settings, collection)
    found: dict[str, Any] = {}

    def why_not(header: dict[str, Any]) -> str | None:
        found.update(header)
        if header.get("collection") != collection or header.get("dim") != dim:
            return "saved for another collection or embedder"
        if header.get("store_id") != store_id:
            return "the collection was rebuilt since"
        if not durable or stored < int(header.get("tracks", 0)):
            return "the collection lacks tracks the snapshot holds (emptied or being rebuilt)"
        return None

    state = saved_state.load(path, why_not, version=FORMAT)
    if state is None:
        return None
    rows = state["rows"]
    try:
        vectors = np.load(path.parent / str(found["vectors"]), mmap_mode="r")
        if vectors.shape != (len(rows.frame), dim) or vectors.dtype != np.float32:
            raise ValueError(f"vectors {vectors.shape} {vectors.dtype}, rows {len(rows.frame)}")
        sync_from = datetime.fromisoformat(str(found["sync_from"]))
    except Exception as exc:  # noqa: BLE001 - a damaged snapshot costs a restore from Chroma
        logger.info(
            "saved state not used",
            extra=log_fields(path=str(path), reason=f"{type(exc).__name__}: {exc}"[:200]),
        )
        return None
    return SavedIndex(rows, vectors, sync_from, state["names"])
