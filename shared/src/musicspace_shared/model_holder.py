"""Models held in memory and swapped when their files on the volume change: the one mechanism
m1, m2 and m3 use for their global model and their per-user models.

Replicas share a service's volume, so before a model is used its sidecar (`X.meta.json`) is
looked at: one stat() (throttled by `check_every_s`), a small read only when the stat moved, and
a full read and sha256 check only when the version moved. A file that does not verify is
never deserialized: the holder keeps serving what it holds, else the kept previous artifact
(`X.prev`, model_store.load_with_fallback), counts the refusal (`model_load_failures`) and
says so in its state. One vocabulary, in /readyz and in the `musicspace_model_state` gauge:

- `missing`: no model file yet (not ready: train it);
- `ready`: the newest file is the one served;
- `degraded`: the newest file was refused; an earlier verified version serves (still ready);
- `failed`: a file exists but neither it nor a kept previous one verifies (not ready).
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from cachetools import LRUCache

from musicspace_shared import model_store
from musicspace_shared.health import Degraded, ModelState
from musicspace_shared.logs import log_fields
from musicspace_shared.metrics import ServiceMetrics
from musicspace_shared.model_store import ModelMeta

logger = logging.getLogger("musicspace.models")
T = TypeVar("T")
Signature = tuple[int, int]  # the sidecar's (mtime_ns, size)


def unpickle(data: bytes) -> Any:
    """The loader for our own pickled models (called only on verified bytes)."""
    return pickle.loads(data)  # noqa: S301


@dataclass
class Held(Generic[T]):
    """A model in memory: what it is, its sidecar meta, its file and the sidecar's stat."""

    model: T
    meta: ModelMeta
    path: Path
    signature: Signature

    @property
    def version(self) -> str:
        return self.meta.version


def signature(path: Path) -> Signature | None:
    """The sidecar's (mtime_ns, size): it changes with every publish; None without one."""
    try:
        st = os.stat(model_store.meta_path(path))
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


class ModelHolder(Generic[T]):
    """One model file (a global model), held in memory and swapped when a new version lands."""

    def __init__(
        self,
        path: Path,
        *,
        load: Callable[[bytes], T] = unpickle,
        name: str = "global",
        check_every_s: float = 0.0,
        metrics: ServiceMetrics | None = None,
        on_swap: Callable[[Held[T]], None] = lambda _held: None,
    ) -> None:
        self.path = path
        self.name = name
        self.check_every_s = check_every_s
        self._load = load
        self._metrics = metrics
        self._on_swap = on_swap
        self._lock = threading.Lock()
        self._held: Held[T] | None = None
        self._seen: Signature | None = None  # the sidecar last looked at (served or refused)
        self._checked_at = float("-inf")
        self.state = ModelState.MISSING
        self._reported = False
        self.problem: str | None = None  # why the newest file is not the one served

    @property
    def held(self) -> Held[T] | None:
        """What is in memory, without looking at the volume."""
        return self._held

    def due(self) -> bool:
        """True when the next get() looks at the volume (nothing held, or the throttle passed)."""
        return self._held is None or time.monotonic() - self._checked_at >= self.check_every_s

    def get(self, *, force: bool = False) -> Held[T] | None:
        """The current model: reloaded first when its sidecar changed (looked at every
        `check_every_s` at most). Thread-safe; does file I/O, so call it off the event loop."""
        now = time.monotonic()
        if not force and self._held is not None and now - self._checked_at < self.check_every_s:
            return self._held
        self._checked_at = now
        sig = signature(self.path)
        if sig is None:
            if self._held is None:
                self._set_state(ModelState.MISSING, None)
            return self._held
        if sig == self._seen:
            return self._held
        with self._lock:
            if sig != self._seen:
                self._reload(sig)
        return self._held

    def readiness(self) -> str | None:
        """For /readyz: None when the newest model serves, Degraded(why) when an earlier one
        does, else why nothing serves ("missing: ..." / "failed: ...")."""
        self.get()
        if self.state is ModelState.READY:
            return None
        if self.state is ModelState.DEGRADED:
            version = self._held.version if self._held else "?"
            return Degraded(f"serving an earlier {self.name} model ({version}): {self.problem}")
        if self.state is ModelState.MISSING:
            return f"missing: {self.name} model {self.path.name} not trained yet"
        return f"failed: {self.name} model {self.path.name}: {self.problem}"

    def _reload(self, sig: Signature) -> None:
        held = self._held
        meta = model_store.read_meta(self.path)
        if held is not None and meta is not None and meta.version == held.version:
            self._seen = sig  # touched, same version: nothing to load
            held.signature = sig
            return
        try:
            artifact = model_store.load_with_fallback(self.path)
            if artifact.problem is not None and held is not None:
                # The new file is bad: the verified model in memory beats the kept previous one.
                self._refuse(sig, artifact.problem)
                return
            model = self._load(artifact.data)
        except Exception as exc:  # noqa: BLE001 - a half-copied or tampered file must not take us down
            self._refuse(sig, f"{type(exc).__name__}: {exc}")
            return
        self._held = Held(model, artifact.meta, self.path, sig)
        self._seen = sig
        if artifact.problem is not None:  # nothing was held: the kept previous one serves
            self._refuse(sig, artifact.problem)
        else:
            self._set_state(ModelState.READY, None)
        logger.info(
            "model loaded", extra=log_fields(model=self.name, version=artifact.meta.version)
        )
        self._on_swap(self._held)

    def _refuse(self, sig: Signature, problem: str) -> None:
        self._seen = sig  # not retried until the file changes again
        logger.warning("model refused", extra=log_fields(model=self.name, error=problem[:200]))
        if self._metrics is not None:
            self._metrics.count("model_load_failures")
        state = ModelState.DEGRADED if self._held is not None else ModelState.FAILED
        self._set_state(state, problem[:300])

    def _set_state(self, state: ModelState, problem: str | None) -> None:
        self.problem = problem
        if self._metrics is not None and (state is not self.state or not self._reported):
            self._metrics.model_state(self.name, state)
            self._reported = True
        self.state = state


class UserModels(Generic[T]):
    """Per-user model files, an LRU of them in memory, each reloaded when its sidecar changes.

    A user whose file is missing or does not verify has no model (the caller serves the global
    one); a refusal is counted. A model handed out is marked used (`.last_used`, read by the
    admin cleanup; at most one write a minute)."""

    def __init__(
        self,
        path_for: Callable[[int], Path],
        *,
        load: Callable[[bytes], T] = unpickle,
        max_users: int = 10_000,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.path_for = path_for
        self._load = load
        self._metrics = metrics
        self._lock = threading.Lock()
        self._cache: LRUCache[int, Held[T]] = LRUCache(maxsize=max(max_users, 1))

    def get(self, user_id: int) -> Held[T] | None:
        path = self.path_for(user_id)
        sig = signature(path)
        if sig is None:
            self.forget(user_id)
            return None
        with self._lock:
            held = self._cache.get(user_id)
        if held is None or held.signature != sig:
            held = self._read(user_id, path, sig)
            if held is None:
                return None
        model_store.touch_last_used(path)
        return held

    def _read(self, user_id: int, path: Path, sig: Signature) -> Held[T] | None:
        try:
            data, meta = model_store.read_verified_bytes(path)
            held = Held(self._load(data), meta, path, sig)
        except FileNotFoundError:
            return None  # replaced between the stat and the read: untrained for this request
        except Exception as exc:  # noqa: BLE001 - any bad artifact means: serve the global model
            logger.warning(
                "user model refused",
                extra=log_fields(user_id=user_id, error=f"{type(exc).__name__}: {exc}"[:200]),
            )
            if self._metrics is not None:
                self._metrics.count("model_load_failures")
            return None
        with self._lock:
            self._cache[user_id] = held
        return held

    def forget(self, user_id: int) -> int:
        """Drop the user's model from memory; 1 when one was held."""
        with self._lock:
            return 0 if self._cache.pop(user_id, None) is None else 1

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
