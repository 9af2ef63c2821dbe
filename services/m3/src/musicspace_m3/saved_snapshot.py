"""m3's snapshot kept on its model volume, so a replica that starts serves at once (issue 18).

Building the snapshot reads every PMS row and interaction: at 1M tracks / 100k users / 16.8M
rows, 60-70 s of a 97 s start-up. So the rebuild worker writes each snapshot it builds to
<model_root>/M3/snapshot/current.pkl (musicspace_shared.saved_state: a JSON header with the
fingerprints and the users it lists, then the snapshot), and a replica that starts while the
catalog's fingerprint is still the file's serves it at once; its watcher then catches up with the activity written since
(CatalogWatcher.follow: the first round runs at once, the rebuild behind the requests). A
catalog that moved since the file was written is built before ready, as with no file.

Erasure: the file holds every user's positives. Forgetting a user deletes it if it lists the
user, and writes the time to `erased` beside it: a file whose reading began before the last erasure is never
loaded (a rebuild under way during the erasure may still write one), and the next rebuild,
which the erasure's deleted rows set off, writes a clean one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from musicspace_m3.settings import Settings
from musicspace_shared import saved_state
from musicspace_shared.model_store import atomic_write_bytes
from musicspace_shared.packing import Packed

if TYPE_CHECKING:
    from musicspace_m3.state import Snapshot

FORMAT = 1  # bump when Snapshot, CatalogIndex or Collab change shape


def folder(settings: Settings) -> Path:
    return settings.model_dir("M3") / "snapshot"


def snapshot_path(settings: Settings) -> Path:
    return folder(settings) / "current.pkl"


def erased_marker(settings: Settings) -> Path:
    return folder(settings) / "erased"


def save(
    settings: Settings,
    snapshot: Snapshot,
    *,
    read_at: float,
    packed: Packed[Snapshot] | None = None,
) -> bool:
    """Write `snapshot` (as `packed`, when given), whose reading of the DB began at `read_at`
    (time.time()); False when the volume refused (logged)."""
    header = {
        "catalog_fingerprint": snapshot.catalog_fingerprint,
        "activity_fingerprint": snapshot.activity_fingerprint,
        "read_at": read_at,
        "tracks": len(snapshot.index),
        "users": sorted(int(u) for u in snapshot.collab.row_of),  # for `forget` (~0.7 MB/100k)
    }
    state = snapshot if packed is None else packed
    return saved_state.save_logged(snapshot_path(settings), header, state, version=FORMAT)


def load(settings: Settings, *, catalog_fp: str) -> Snapshot | None:
    """The saved snapshot if it was built for this catalog, in this format, and read after the
    last erasure; else None."""

    def why_not(header: dict[str, Any]) -> str | None:
        if header.get("catalog_fingerprint") != catalog_fp:
            return "the catalog changed since it was written"
        erased_at = _erased_at(settings)
        if erased_at is not None and float(header.get("read_at", 0)) <= erased_at:
            return "a user was erased after its reading began"
        return None

    snapshot: Snapshot | None = saved_state.load(snapshot_path(settings), why_not, version=FORMAT)
    return snapshot


def _erased_at(settings: Settings) -> float | None:
    try:
        return float(erased_marker(settings).read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        return float("inf")  # an unreadable marker: trust no file


def forget(settings: Settings, user_id: int) -> list[dict[str, Any]]:
    """Erasure (after the user's rows are deleted): write the time to the marker, and delete
    the saved snapshot if it lists the user, and any half-written one (its writer's replace
    then fails, which it logs); what was removed, as the forget report lists it."""
    # The time in the file, not its mtime: the kernel stamps files with a coarser clock.
    atomic_write_bytes(erased_marker(settings), repr(time.time()).encode())
    path = snapshot_path(settings)
    found = [p for p in [path] if _lists(p, user_id)]
    removed = []
    for file in [*found, *path.parent.glob(f".{path.name}.*.tmp")]:
        try:
            size = file.stat().st_size
            file.unlink()
        except FileNotFoundError:
            continue
        removed.append({"paths": [str(file.relative_to(settings.model_root))], "bytes": size})
    return removed


def _lists(path: Path, user_id: int) -> bool:
    """Whether the saved snapshot lists the user (a damaged file may: True)."""
    try:
        header = saved_state.read_header(path)
    except Exception:  # noqa: BLE001 - damaged or another format: delete rather than keep
        return True
    return header is not None and user_id in header.get("users", [user_id])
