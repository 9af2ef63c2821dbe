"""Loaded models: the global ranker and per-user fine-tuned rankers, reloaded when the volume changes.

Replicas share the model volume, so before a model is used its sidecar meta is compared (a
stat, and a small read only when the file changed) with the version held in memory. A model
whose bytes do not match its recorded sha256 is refused: the previous version keeps serving
(for a user model: the global one).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from catboost import CatBoost

from musicspace_m3 import ranker
from musicspace_shared import model_store
from musicspace_shared.logs import log_fields

logger = logging.getLogger("musicspace.m3.models")

USER_MODEL_SUFFIX = "_.cbm"


@dataclass
class Loaded:
    model: CatBoost
    version: str
    path: Path
    stamp: float  # mtime of the meta file when loaded


def global_path(model_dir: Path, name: str) -> Path:
    return model_dir / name


def user_model_path(model_dir: Path, user_id: int) -> Path:
    return model_store.user_file(model_dir / "user_models", user_id, USER_MODEL_SUFFIX)


def _meta_stamp(path: Path) -> float | None:
    try:
        return model_store.meta_path(path).stat().st_mtime
    except FileNotFoundError:
        return None


def load_verified(path: Path) -> Loaded:
    """Read, check sha256, deserialize (raises FileNotFoundError / ModelIntegrityError)."""
    stamp = _meta_stamp(path) or 0.0
    data, meta = model_store.read_verified_bytes(path)
    return Loaded(ranker.from_bytes(data), meta.version, path, stamp)


class ModelRegistry:
    """Thread-safe holder of the global model and an LRU of user models."""

    def __init__(
        self,
        model_dir: Path,
        global_name: str,
        *,
        check_every_s: float = 2.0,
        max_user_models: int = 256,
        on_failure=None,
    ) -> None:
        self.model_dir = model_dir
        self.global_file = global_path(model_dir, global_name)
        self.check_every_s = check_every_s
        self.max_user_models = max_user_models
        self._global: Loaded | None = None
        self._checked_at = 0.0
        self._users: OrderedDict[int, Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._on_failure = on_failure or (lambda: None)

    @property
    def global_model(self) -> Loaded | None:
        return self._global

    def refresh_global(self, *, force: bool = False) -> Loaded | None:
        """Reload the global model when its meta changed on the volume (throttled)."""
        now = time.monotonic()
        if not force and now - self._checked_at < self.check_every_s and self._global is not None:
            return self._global
        self._checked_at = now
        stamp = _meta_stamp(self.global_file)
        current = self._global
        if stamp is None or (current is not None and stamp == current.stamp):
            return current
        meta = model_store.read_meta(self.global_file)
        if current is not None and meta is not None and meta.version == current.version:
            current.stamp = stamp
            return current
        try:
            artifact = model_store.load_with_fallback(self.global_file)
            if artifact.problem is not None:
                # The new file is bad: keep what is in memory, else start from the kept previous one.
                logger.warning(
                    "global model refused", extra=log_fields(error=artifact.problem[:200])
                )
                self._on_failure()
                if current is not None:
                    current.stamp = stamp
                    return current
            loaded = Loaded(
                ranker.from_bytes(artifact.data), artifact.meta.version, self.global_file, stamp
            )
        except Exception as exc:  # noqa: BLE001 - a half-copied or tampered file must not take us down
            logger.warning(
                "global model refused", extra=log_fields(error=f"{type(exc).__name__}: {exc}"[:200])
            )
            self._on_failure()
            return current
        with self._lock:
            self._global = loaded
            self._users.clear()  # user models were fine-tuned from the old global one; reload lazily
        logger.info("global model loaded", extra=log_fields(version=loaded.version))
        return loaded

    def user_model(self, user_id: int) -> Loaded | None:
        """The user's fine-tuned model if one exists and verifies, else None (global serves)."""
        path = user_model_path(self.model_dir, user_id)
        stamp = _meta_stamp(path)
        with self._lock:
            cached = self._users.get(user_id)
            if cached is not None and stamp == cached.stamp:
                self._users.move_to_end(user_id)
                return cached
        if stamp is None:
            with self._lock:
                self._users.pop(user_id, None)
            return None
        try:
            loaded = load_verified(path)
        except Exception as exc:  # noqa: BLE001 - any bad artifact means: serve the global model
            logger.warning(
                "user model refused",
                extra=log_fields(user_id=user_id, error=f"{type(exc).__name__}: {exc}"[:200]),
            )
            self._on_failure()
            return None
        with self._lock:
            self._users[user_id] = loaded
            while len(self._users) > self.max_user_models:
                self._users.popitem(last=False)
        return loaded
