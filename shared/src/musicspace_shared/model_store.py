"""Model artifacts on a service's volume: atomic publish, sha256 manifest, last use.

Every artifact `X` has a sidecar `X.meta.json` (version, trained_at, rows, metrics, sha256).
Publishing writes a temp file on the same filesystem, fsyncs it and os.replace()s it into
place, then the sidecar the same way, so a reader sees either the old pair or the new one.
A reader verifies the checksum before unpickling; replicas sharing the volume compare the
sidecar's version with what they hold in memory before use.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from musicspace_shared.ids import checked_user_id

META_SUFFIX = ".meta.json"
LAST_USED_SUFFIX = ".last_used"
PREVIOUS_SUFFIX = ".prev"


class ModelIntegrityError(Exception):
    """The artifact's bytes do not match its recorded checksum (corrupt or half-written)."""


@dataclass
class ModelMeta:
    version: str
    trained_at: str
    rows: int
    sha256: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def new_version() -> str:
    """A sortable, unique version: UTC timestamp plus a short random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda handle: handle.write(data))


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """`write(handle)` fills a temp file beside `path`; fsynced, it replaces `path` at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def meta_path(path: Path) -> Path:
    return path.with_name(path.name + META_SUFFIX)


def previous_path(path: Path) -> Path:
    return path.with_name(path.name + PREVIOUS_SUFFIX)


def _keep_previous(path: Path) -> None:
    """Keep the current artifact (if it verifies) as <name>.prev, the fallback for a bad publish."""
    try:
        data, meta = read_verified_bytes(path)
    except (FileNotFoundError, ModelIntegrityError):
        return
    previous = previous_path(path)
    atomic_write_bytes(previous, data)
    atomic_write_bytes(meta_path(previous), json.dumps(asdict(meta), indent=2).encode())


def publish_bytes(
    path: Path, data: bytes, meta: ModelMeta, *, keep_previous: bool = False
) -> ModelMeta:
    """Atomically publish an artifact and its metadata; returns meta with sha256 filled.

    keep_previous (global models): the artifact being replaced stays as <name>.prev so a
    corrupted new one can fall back to it (load_with_fallback).
    """
    meta.sha256 = hashlib.sha256(data).hexdigest()
    if keep_previous:
        _keep_previous(path)
    atomic_write_bytes(path, data)
    atomic_write_bytes(meta_path(path), json.dumps(asdict(meta), indent=2).encode())
    return meta


def publish_file(
    path: Path, source: Path, meta: ModelMeta, *, keep_previous: bool = False
) -> ModelMeta:
    """Publish a file another library wrote (e.g. CatBoost's save_model) under path."""
    return publish_bytes(path, source.read_bytes(), meta, keep_previous=keep_previous)


def publish_pickle(
    path: Path, obj: Any, meta: ModelMeta, *, keep_previous: bool = False
) -> ModelMeta:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return publish_bytes(path, data, meta, keep_previous=keep_previous)


def read_meta(path: Path) -> ModelMeta | None:
    try:
        raw = json.loads(meta_path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    known = {key: raw[key] for key in ModelMeta.__dataclass_fields__ if key in raw}
    return ModelMeta(**known)


def read_verified_bytes(path: Path) -> tuple[bytes, ModelMeta]:
    """The artifact's bytes, only if they match the recorded sha256."""
    meta = read_meta(path)
    if meta is None:
        raise FileNotFoundError(f"no metadata for {path}")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta.sha256:
        raise ModelIntegrityError(f"checksum mismatch for {path.name}")
    return data, meta


def load_pickle(path: Path) -> tuple[Any, ModelMeta]:
    """Unpickle a model after its checksum is verified (only our own files are unpickled)."""
    data, meta = read_verified_bytes(path)
    return pickle.loads(data), meta  # noqa: S301


@dataclass
class LoadedArtifact:
    data: bytes
    meta: ModelMeta
    source: str  # "current" or "previous"
    problem: str | None = None  # why the current artifact was not used


def load_with_fallback(path: Path) -> LoadedArtifact:
    """The current artifact if it verifies, else the kept previous one (problem says why).

    Raises FileNotFoundError when neither exists, ModelIntegrityError when neither verifies.
    """
    try:
        data, meta = read_verified_bytes(path)
        return LoadedArtifact(data, meta, "current")
    except (FileNotFoundError, ModelIntegrityError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
        previous = previous_path(path)
        if not previous.exists():
            raise
    data, meta = read_verified_bytes(previous)
    return LoadedArtifact(data, meta, "previous", problem)


def load_pickle_with_fallback(path: Path) -> tuple[Any, LoadedArtifact]:
    """load_with_fallback, unpickled (only our own verified files are unpickled)."""
    artifact = load_with_fallback(path)
    return pickle.loads(artifact.data), artifact  # noqa: S301


def touch_last_used(path: Path, *, min_interval_s: float = 60.0) -> None:
    """Record a use (throttled: at most one write a minute per model)."""
    marker = path.with_name(path.name + LAST_USED_SUFFIX)
    try:
        if time.time() - marker.stat().st_mtime < min_interval_s:
            return
    except FileNotFoundError:
        pass
    try:
        marker.touch()
    except OSError:
        pass  # a read-only volume must not fail a recommendation


def last_used(path: Path) -> datetime | None:
    for candidate in (path.with_name(path.name + LAST_USED_SUFFIX), meta_path(path)):
        try:
            return datetime.fromtimestamp(candidate.stat().st_mtime, UTC)
        except FileNotFoundError:
            continue
    return None


def user_dir(root: Path, user_id: int) -> Path:
    """A per-user folder under root; the id is validated before it touches the path."""
    return root / str(checked_user_id(user_id))


def user_file(root: Path, user_id: int, suffix: str) -> Path:
    """A per-user file under root named <userId><suffix>, id validated first."""
    return root / f"{checked_user_id(user_id)}{suffix}"
