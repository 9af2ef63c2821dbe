"""State a service builds from the DB, kept on its model volume so that a replica which starts
serves it at once instead of reading the DB first (issue 18): m3's snapshot, m2's content space.

A file is a one-line JSON header (what the state was built from: the versions that say whether
it is still current) followed by the state packed by musicspace_shared.packing, written
atomically (model_store.atomic_write: a reader sees the old file or the new one). `load` reads
the header first and asks the caller's `why_not(header)` whether the state may be used; a
damaged or foreign file is logged and skipped: it costs a rebuild, never the start.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from musicspace_shared.logs import log_fields
from musicspace_shared.model_store import atomic_write
from musicspace_shared.packing import FORMAT as PACKING
from musicspace_shared.packing import Packed, pack_into, unpack_from

logger = logging.getLogger("musicspace.saved_state")


def save(path: Path, header: dict[str, Any], state: Any, *, version: int) -> None:
    """Write `state` (or the one Packed) under `header`, with the format `version` its reader
    will ask for."""

    def write(handle: BinaryIO) -> None:
        handle.write(json.dumps(header | {"format": version, "packing": PACKING}).encode() + b"\n")
        if isinstance(state, Packed):
            handle.write(state.data)
        else:
            pack_into(state, handle)

    atomic_write(path, write)


def read_header(path: Path) -> dict[str, Any] | None:
    """The file's header; None when there is no file. Raises on a damaged header."""
    try:
        with path.open("rb") as handle:
            header: dict[str, Any] = json.loads(handle.readline())
    except FileNotFoundError:
        return None
    return header


def load(
    path: Path, why_not: Callable[[dict[str, Any]], str | None], *, version: int
) -> Any | None:
    """The state saved at `path` if it is in format `version` and `why_not(header)` is None;
    else None, the reason logged."""
    try:
        with path.open("rb") as handle:
            header = json.loads(handle.readline())
            found = header.get("format")
            packed = header.get("packing", 1)  # files before the packing format was written: 1
            if found != version:
                reason = f"format {found!r}, this version reads {version}"
            elif packed != PACKING:
                reason = f"packed in format {packed!r}, this version reads {PACKING}"
            else:
                reason = why_not(header)
            if reason is None:
                return unpack_from(handle)
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - a damaged file costs a rebuild, not the start
        reason = f"unreadable: {type(exc).__name__}: {exc}"[:200]
    logger.info("saved state not used", extra=log_fields(path=str(path), reason=reason))
    return None


def save_logged(path: Path, header: dict[str, Any], state: Any, *, version: int) -> bool:
    """`save`, where a full or read-only volume is logged, not raised: the state is served
    all the same, only the next replica builds its own."""
    try:
        save(path, header, state, version=version)
    except OSError as exc:
        logger.warning(
            "state not saved",
            extra=log_fields(path=str(path), error=f"{type(exc).__name__}: {exc}"[:200]),
        )
        return False
    return True
