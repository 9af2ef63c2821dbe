"""m1 settings: env prefix M1_, shared fields from CommonSettings."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from musicspace_shared.settings import CommonSettings


class Settings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="M1_")

    max_per_artist: int = 2
    min_tracks_for_personal_model: int = 10
    # `musicspace train m1` fits on at most this many users (a seeded sample; None: all):
    # its time grows with users x catalog (musicspace_shared.sampling).
    train_max_users: int | None = 3000
    catalog_check_s: float = 5.0  # see CommonSettings
    reload_check_s: float = 0.0  # the global model's sidecar is looked at before every use
    # Ranked candidate lists kept per (user, models, catalog, owned/disliked tracks): exact,
    # since every input is in the key; 0 disables.
    ranked_cache_size: int = 2048
