"""m3's snapshot kept on its model volume, so a replica that starts serves at once (issue 18).

Building the snapshot reads every PMS row and interaction: at 1M tracks / 100k users / 16.8M
rows, 60-70 s of a 97 s start-up. So the rebuild worker writes each snapshot it builds to
<model_root>/M3/snapshot/current.pkl (a one-line JSON header, then the snapshot packed by
musicspace_shared.packing), and a replica that starts while the catalog's fingerprint is still
the file's serves it at once; its watcher then catches up with the activity written since
(CatalogWatcher.follow: the first round runs at once, the rebuild behind the requests). A
catalog that moved since the file was written is built before ready, as with no file.

Erasure: the file holds every user's positives. Forgetting a user deletes it if it lists the user, and writes
the time to `erased` beside it: a file whose reading began before the last erasure is never
loaded (a rebuild under way during the erasure may still write one), and the next rebuild,
which the erasure's deleted rows set off, writes a clean one.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from musicspace_m3.settings import Settings
from musicspace_shared.logs import log_fields
from musicspace_shared.model_store import atomic_write, atomic_write_bytes
from musicspace_shared.packing import pack_into, unpack_from

if TYPE_CHECKING:
    from musicspace_m3.state import Snapshot

logger = logging.getLogger("musicspace.m3.saved_snapshot")
FORMAT = 1  # bump when Snapshot, CatalogIndex or Collab change shape


def folder(settings: Settings) -> Path:
    return settings.model_dir("M3") / "snapshot"


def snapshot_path(settings: Settings) -> Path:
    return folder(settings) / "current.pkl"


def erased_marker(settings: Settings) -> Path:
    return folder(settings) / "erased"


def save(settings: Settings, snapshot: Snapshot, *, read_at: float) -> None:
    """Write `snapshot`, whose reading of the DB began at `read_at` (time.time())."""
    header = {
        "format": FORMAT,
        "catalog_fingerprint": snapshot.catalog_fingerprint,
        "activity_fingerprint": snapshot.activity_fingerprint,
        "read_at": read_at,
        "tracks": len(snapshot.index),
        "users": snapshot.collab.n_users,
    }

    users = np.array(sorted(int(u) for u in snapshot.collab.row_of), dtype=np.int64)

    def write(handle: BinaryIO) -> None:
        handle.write(json.dumps(header).encode() + b"\n")
        np.save(handle, users)  # read alone by `forget` (800 KB at 100k users)
        pack_into(snapshot, handle)

    atomic_write(snapshot_path(settings), write)


def load(settings: Settings, *, catalog_fp: str) -> Snapshot | None:
    """The saved snapshot if it was built for this catalog, in this format, and read after the
    last erasure; else None (an unreadable file is logged and skipped, never an error)."""
    path = snapshot_path(settings)
    try:
        with path.open("rb") as handle:
            header = json.loads(handle.readline())
            why_not = _unusable(settings, header, catalog_fp)
            if why_not is None:
                np.load(handle)  # the users, before the snapshot
                snapshot: Snapshot = unpack_from(handle)
                return snapshot
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - a damaged file costs a rebuild, not the start
        why_not = f"unreadable: {type(exc).__name__}: {exc}"[:200]
    logger.info("saved snapshot not used", extra=log_fields(path=str(path), reason=why_not))
    return None


def _unusable(settings: Settings, header: dict[str, Any], catalog_fp: str) -> str | None:
    if header.get("format") != FORMAT:
        return f"format {header.get('format')!r}, this version reads {FORMAT}"
    if header.get("catalog_fingerprint") != catalog_fp:
        return "the catalog changed since it was written"
    try:
        erased_at = float(erased_marker(settings).read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        return "the erasure marker is unreadable"
    if float(header.get("read_at", 0)) <= erased_at:
        return "a user was erased after its reading began"
    return None


def forget(settings: Settings, user_id: int) -> list[dict[str, Any]]:
    """Erasure (after the user's rows are deleted): write the time to the marker, and delete
    the saved snapshot if it holds the user, and any half-written one (its writer's replace
    then fails, which it logs); what was removed, as the forget report lists it."""
    # The time in the file, not its mtime: the kernel stamps files with a coarser clock.
    atomic_write_bytes(erased_marker(settings), repr(time.time()).encode())
    path = snapshot_path(settings)
    found = [p for p in [path] if _holds(p, user_id)]
    removed = []
    for file in [*found, *path.parent.glob(f".{path.name}.*.tmp")]:
        try:
            size = file.stat().st_size
            file.unlink()
        except FileNotFoundError:
            continue
        removed.append({"paths": [str(file.relative_to(settings.model_root))], "bytes": size})
    return removed


def _holds(path: Path, user_id: int) -> bool:
    """Whether the saved snapshot lists the user (an unreadable file may: True)."""
    try:
        with path.open("rb") as handle:
            handle.readline()
            users = np.load(handle)
    except FileNotFoundError:
        return False
    except Exception:  # noqa: BLE001 - damaged or another format: delete rather than keep
        return True
    at = int(np.searchsorted(users, user_id))
    return at < len(users) and int(users[at]) == user_id
