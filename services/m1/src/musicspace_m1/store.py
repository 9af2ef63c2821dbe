"""m1's files on its volume: the global model and per-user models, with in-memory caches.

Replicas share the volume, so a cached model is reused only while the stat signature of its
sidecar (mtime, size) is unchanged: a model trained through another replica is picked up on
the next request, at the cost of one stat() call (musicspace_shared.model_holder).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from musicspace_m1.hybrid import GlobalModel
from musicspace_m1.personal import PersonalModel
from musicspace_m1.profile import AudioProfile
from musicspace_shared import model_store
from musicspace_shared.metrics import ServiceMetrics
from musicspace_shared.model_holder import ModelHolder, UserModels
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
    """m1's models in memory: the global one and the per-user ones, each reloaded when its
    file changes (musicspace_shared.model_holder)."""

    def __init__(
        self,
        root: Path,
        max_users: int = 10_000,
        *,
        check_every_s: float = 0.0,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.root = root
        self.holder: ModelHolder[GlobalModel] = ModelHolder(
            global_path(root), check_every_s=check_every_s, metrics=metrics
        )
        self.users: UserModels[UserModel] = UserModels(
            lambda user_id: user_paths(root, user_id)[0], max_users=max_users, metrics=metrics
        )

    def global_model(self) -> tuple[GlobalModel, ModelMeta] | None:
        """The current global model, or None while none verifies."""
        held = self.holder.get()
        return None if held is None else (held.model, held.meta)

    def user_model(self, user_id: int) -> UserModel | None:
        """The user's stored model, or None when they have not been trained (or it does not
        verify: served as untrained until retrained)."""
        held = self.users.get(user_id)
        return None if held is None else held.model

    def forget(self, user_id: int) -> None:
        self.users.forget(user_id)


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
