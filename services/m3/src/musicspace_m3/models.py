"""Loaded models: the global ranker and per-user fine-tuned rankers, reloaded when the volume changes.

Both are held by musicspace_shared.model_holder: before a model is used its sidecar is
looked at (a stat, and a small read only when the file changed); a model whose bytes do not
match its recorded sha256 is refused and the previous version keeps serving (for a user
model: the global one). A new global model drops the user models held in memory: they were
fine-tuned from the old one and are read again on their next use.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeAlias

from catboost import CatBoost

from musicspace_m3 import ranker
from musicspace_shared import model_store
from musicspace_shared.metrics import ServiceMetrics
from musicspace_shared.model_holder import Held, ModelHolder, UserModels

USER_MODEL_SUFFIX = "_.cbm"
Loaded: TypeAlias = Held[CatBoost]  # .model, .version, .path


def global_path(model_dir: Path, name: str) -> Path:
    return model_dir / name


def user_model_path(model_dir: Path, user_id: int) -> Path:
    return model_store.user_file(model_dir / "user_models", user_id, USER_MODEL_SUFFIX)


class ModelRegistry:
    """The global model and an LRU of user models (thread-safe)."""

    def __init__(
        self,
        model_dir: Path,
        global_name: str,
        *,
        check_every_s: float = 2.0,
        max_user_models: int = 256,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.model_dir = model_dir
        self.users: UserModels[CatBoost] = UserModels(
            lambda user_id: user_model_path(model_dir, user_id),
            load=ranker.from_bytes,
            max_users=max_user_models,
            metrics=metrics,
        )
        self.holder: ModelHolder[CatBoost] = ModelHolder(
            global_path(model_dir, global_name),
            load=ranker.from_bytes,
            check_every_s=check_every_s,
            metrics=metrics,
            on_swap=lambda _held: self.users.clear(),
        )

    @property
    def global_model(self) -> Loaded | None:
        return self.holder.held

    def refresh_global(self, *, force: bool = False) -> Loaded | None:
        """The global model, reloaded first when its meta changed on the volume (throttled)."""
        return self.holder.get(force=force)

    def user_model(self, user_id: int) -> Loaded | None:
        """The user's fine-tuned model if one exists and verifies, else None (global serves)."""
        return self.users.get(user_id)
