"""m1 settings: env prefix M1_, shared fields from CommonSettings."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from musicspace_shared.settings import CommonSettings


class Settings(CommonSettings):
    model_config = SettingsConfigDict(
        env_prefix="M1_", env_file=".env", extra="ignore", populate_by_name=True
    )

    max_per_artist: int = 2
    min_tracks_for_personal_model: int = 10
    # Seconds between catalog change checks (count + max(updated_at)); the index is rebuilt
    # in the background only when they differ.
    catalog_refresh_s: float = 5.0
    # Threads for CPU work (scoring, training); 0 = one per core, at most 4.
    cpu_workers: int = 0
    # Ranked candidate lists kept per (user, models, catalog, owned/disliked tracks): exact,
    # since every input is in the key; 0 disables.
    ranked_cache_size: int = 2048
