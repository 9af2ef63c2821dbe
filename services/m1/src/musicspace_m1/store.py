"""m1's files on its volume: the global model and per-user models, with in-memory caches.

Replicas share the volume, so a cached model is reused only while the stat signature of its
sidecar (mtime, size) is unchanged: a model trained through another replica is picked up on
the next request, at the cost of one stat() call.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from musicspace_m1.hybrid import GlobalModel
from musicspace_m1.personal import PersonalModel
from musicspace_m1.profile import AudioProfile
from musicspace_shared import model_store
from musicspace_shared.model_store import ModelMeta

GLOBAL_NAME = "audio_predictor.pkl"
USER_MODELS = "user_models"
USER_MODEL_NAME = "model.pkl"
USER_METADATA_NAME = "metadata.json"


@dataclass
class UserModel:
    """What M1/user_models/{userId}/model.pkl holds."""

    user_id: int
    fallback: bool
    reason: str | None
    audio: AudioProfile  # the user's own profile, or the global average one when fallback
    personal: PersonalModel | None
    tracks_used: int
    version: str
    trained_at: str
    metrics: dict[str, float] = field(default_factory=dict)


def global_path(root: Path) -> Path:
    return root / GLOBAL_NAME


def user_paths(root: Path, user_id: int) -> tuple[Path, Path]:
    """(model.pkl, metadata.json) of one user; the id is validated before it touches a path."""
    folder = model_store.user_dir(root / USER_MODELS, user_id)
    return folder / USER_MODEL_NAME, folder / USER_METADATA_NAME


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(model_store.meta_path(path))
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


def publish_user_model(root: Path, model: UserModel, metadata: dict[str, Any]) -> dict[str, Any]:
    """Write model.pkl (+ sha256 sidecar) then metadata.json, each atomically."""
    model_path, metadata_path = user_paths(root, model.user_id)
    meta = model_store.publish_pickle(
        model_path,
        model,
        ModelMeta(
            version=model.version,
            trained_at=model.trained_at,
            rows=model.tracks_used,
            metrics=model.metrics,
        ),
    )
    metadata = {**metadata, "sha256": meta.sha256}
    model_store.atomic_write_bytes(
        metadata_path, json.dumps(metadata, indent=2, default=str).encode()
    )
    return metadata


def read_user_metadata(root: Path, user_id: int) -> dict[str, Any] | None:
    _, metadata_path = user_paths(root, user_id)
    try:
        return json.loads(metadata_path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


class ModelCache:
    """The loaded global model and per-user models, reloaded when their files change."""

    def __init__(
        self,
        root: Path,
        max_users: int = 10_000,
        *,
        on_failure: Callable[[], None] = lambda: None,
    ) -> None:
        self.root = root
        self.max_users = max_users
        self.on_failure = on_failure  # a stored model failed verification (counted in metrics)
        self._lock = threading.Lock()
        self._global: tuple[tuple[int, int], GlobalModel, ModelMeta] | None = None
        # Why the newest global model file is not the one served (corrupt or half-written).
        self.problem: str | None = None
        self._users: dict[int, tuple[tuple[int, int], UserModel]] = {}

    def global_model(self) -> tuple[GlobalModel, ModelMeta] | None:
        """The current global model, or None while none is published."""
        path = global_path(self.root)
        sig = _signature(path)
        if sig is None:
            return None
        cached = self._global
        if cached is not None and cached[0] == sig:
            return cached[1], cached[2]
        with self._lock:
            try:
                model, artifact = model_store.load_pickle_with_fallback(path)
            except (FileNotFoundError, model_store.ModelIntegrityError) as exc:
                self.on_failure()
                if cached is None:
                    raise
                # Neither the new file nor a kept previous one verifies: keep what we serve.
                self.problem = f"{type(exc).__name__}: {exc}"
                self._global = (sig, cached[1], cached[2])
                return cached[1], cached[2]
            self.problem = artifact.problem
            if artifact.problem is not None:
                self.on_failure()
            if artifact.problem is not None and cached is not None:
                # The new file is bad: the verified model in memory beats the kept previous one.
                self._global = (sig, cached[1], cached[2])
                return cached[1], cached[2]
            self._global = (sig, model, artifact.meta)
        return model, artifact.meta

    def user_model(self, user_id: int) -> UserModel | None:
        """The user's stored model, or None when they have not been trained. A model handed
        out is marked used (the `.last_used` marker admin cleanup reads, at most once a minute)."""
        path, _ = user_paths(self.root, user_id)
        sig = _signature(path)
        if sig is None:
            self._users.pop(user_id, None)
            return None
        cached = self._users.get(user_id)
        if cached is not None and cached[0] == sig:
            model_store.touch_last_used(path)
            return cached[1]
        try:
            model, _ = model_store.load_pickle(path)
        except FileNotFoundError:
            return None  # replaced between the stat and the read: untrained for this request
        except model_store.ModelIntegrityError:
            self.on_failure()
            return None  # corrupt: serve as untrained until retrained
        with self._lock:
            if len(self._users) >= self.max_users:
                self._users.pop(next(iter(self._users)))
            self._users[user_id] = (sig, model)
        model_store.touch_last_used(path)
        return model

    def forget(self, user_id: int) -> None:
        self._users.pop(user_id, None)


def metadata_for(model: UserModel, *, profile: dict[str, Any]) -> dict[str, Any]:
    """metadata.json: tracks used, trained_at, profile means and spreads, version, metrics."""
    return {
        "user_id": model.user_id,
        "model": "profile_fallback" if model.fallback else "personal",
        "reason": model.reason,
        "tracks_used": model.tracks_used,
        "trained_at": model.trained_at,
        "version": model.version,
        "profile": profile,
        "metrics": model.metrics,
        "personal_model": None
        if model.personal is None
        else {
            k: v for k, v in asdict(model.personal).items() if k in ("positives", "train_accuracy")
        },
    }
