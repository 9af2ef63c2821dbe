"""Model volume operations: storage usage per family and cleanup of unused user models.

A family's user models live in one folder under its volume (M1/user_models/<id>/,
M2/user_svm_models/<id>..., M3/user_models/<id>_.cbm); an entry is a file (with its sidecars)
or a folder. Last use comes from the `.last_used` markers model_store.touch_last_used writes,
else from the newest file of the entry.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from musicspace_shared import registry
from musicspace_shared.logs import log_fields
from musicspace_shared.model_store import LAST_USED_SUFFIX, META_SUFFIX

logger = logging.getLogger("musicspace.model_ops")

FAMILIES = registry.model_families()
USER_MODEL_FOLDERS = ("user_models", "user_svm_models")
_ENTRY_ID = re.compile(r"^(\d+)")


@dataclass
class UserModelEntry:
    family: str
    folder: str
    user_id: int
    paths: list[Path]
    bytes: int
    last_used_at: datetime


def _files(path: Path) -> list[tuple[Path, os.stat_result]]:
    """The files of an entry path (itself, or those under a folder) with their stat; a file
    that another replica removes meanwhile (an erasure reaches every replica of a shared
    volume at once) is left out, not raised."""
    found = []
    try:
        candidates = list(path.rglob("*")) if path.is_dir() else [path]
    except FileNotFoundError:
        return []
    for file in candidates:
        try:
            info = file.stat()
        except FileNotFoundError:
            continue
        if stat.S_ISREG(info.st_mode):
            found.append((file, info))
    return found


def _size(path: Path) -> int:
    return sum(info.st_size for _file, info in _files(path))


def _newest_mtime(paths: list[Path]) -> datetime:
    files = [found for p in paths for found in _files(p)]
    marker = [f for f in files if f[0].name.endswith(LAST_USED_SUFFIX)]
    pool = marker or files
    newest = max((info.st_mtime for _file, info in pool), default=0.0)
    return datetime.fromtimestamp(newest, UTC)


def user_model_entries(family_dir: Path, family: str) -> list[UserModelEntry]:
    """Every user model entry of a family, grouped with its sidecar files."""
    entries: list[UserModelEntry] = []
    for folder in USER_MODEL_FOLDERS:
        base = family_dir / folder
        if not base.is_dir():
            continue
        groups: dict[int, list[Path]] = {}
        for path in base.iterdir():
            match = _ENTRY_ID.match(path.name)
            if match and not path.name.startswith("."):
                groups.setdefault(int(match.group(1)), []).append(path)
        for user_id, paths in sorted(groups.items()):
            entries.append(
                UserModelEntry(
                    family=family,
                    folder=folder,
                    user_id=user_id,
                    paths=sorted(paths),
                    bytes=sum(_size(p) for p in paths),
                    last_used_at=_newest_mtime(paths),
                )
            )
    return entries


def usage(model_root: Path, families: tuple[str, ...] = FAMILIES) -> dict[str, dict[str, int]]:
    """Bytes and counts per family: total, global artifacts and user models."""
    report: dict[str, dict[str, int]] = {}
    for family in families:
        family_dir = model_root / family
        entries = user_model_entries(family_dir, family)
        total = _size(family_dir) if family_dir.exists() else 0
        user_bytes = sum(e.bytes for e in entries)
        report[family] = {
            "bytes": total,
            "user_models": len(entries),
            "user_model_bytes": user_bytes,
            "global_bytes": total - user_bytes,
        }
    return report


def cleanup(
    model_root: Path,
    *,
    older_than_days: int = 90,
    dry_run: bool = True,
    families: tuple[str, ...] = FAMILIES,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Remove user models unused for older_than_days (dry run lists them only)."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=older_than_days)
    removed: list[dict[str, Any]] = []
    for family in families:
        for entry in user_model_entries(model_root / family, family):
            if entry.last_used_at >= cutoff:
                continue
            removed.append(
                {
                    "family": family,
                    "user_id": entry.user_id,
                    "bytes": entry.bytes,
                    "last_used_at": entry.last_used_at.isoformat(),
                }
            )
            if dry_run:
                continue
            remove_entry(entry)
            logger.info("user model removed", extra=log_fields(**removed[-1]))
    return {
        "dry_run": dry_run,
        "older_than_days": older_than_days,
        "removed": removed,
        "bytes": sum(int(r["bytes"]) for r in removed),
    }


def remove_entry(entry: UserModelEntry) -> None:
    """Delete one user model entry (cleanup, erasure)."""
    for path in sorted(entry.paths, key=_sort_key):
        # Remove the artifact before its sidecars: a reader that still sees the
        # sidecar finds no model and falls back; it never loads a half-removed pair.
        _remove(path)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _sort_key(path: Path) -> tuple[int, str]:
    return (1 if path.name.endswith((META_SUFFIX, LAST_USED_SUFFIX)) else 0, path.name)
