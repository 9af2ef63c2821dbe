"""llm settings: env prefix LLM_, shared fields from CommonSettings."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from musicspace_shared.settings import CommonSettings


class Settings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="LLM_")
    renamed: ClassVar[dict[str, str]] = {
        **CommonSettings.renamed,
        "sync_interval_s": "catalog_check_s",
    }

    # auto: Gemini when a key is configured, the offline model otherwise.
    provider: Literal["auto", "offline", "gemini"] = "auto"
    google_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("GOOGLE_API_KEY", "LLM_GOOGLE_API_KEY")
    )
    google_api_key_file: Path | None = Field(
        None, validation_alias=AliasChoices("GOOGLE_API_KEY_FILE", "LLM_GOOGLE_API_KEY_FILE")
    )
    # Tests point this at a fake server; production leaves it unset (Google's default endpoint).
    gemini_base_url: str | None = None
    gemini_embedding_model: str = "gemini-embedding-001"
    # 768 of gemini-embedding-001's 3072 dimensions (Matryoshka-trained, re-normalised here):
    # https://ai.google.dev/gemini-api/docs/embeddings#control-embedding-size
    gemini_embedding_dim: int = Field(768, ge=128, le=3072)
    gemini_reason_model: str = "gemini-2.5-flash"
    gemini_reasons: bool = True
    gemini_timeout_s: float = Field(20.0, gt=0)
    gemini_retries: int = Field(5, ge=0, le=10)
    reason_timeout_s: float = Field(8.0, gt=0)
    # Gemini also reads each query (structured output); past the timeout the offline reading
    # stands alone, so this bounds what Gemini can add to a search's latency.
    gemini_query_model: str = "gemini-2.5-flash"
    gemini_query_reading: bool = True
    query_timeout_s: float = Field(1.5, gt=0)
    # Chroma: a server when set (compose), else the embedded persistent client on the volume.
    chroma_url: str | None = Field(
        None, validation_alias=AliasChoices("CHROMA_URL", "LLM_CHROMA_URL")
    )
    chroma_path: Path | None = None
    # How often the index looks for tracks added or enriched since its last sync (seconds;
    # see CommonSettings); here 0 turns the periodic sync off (index/sync still runs one).
    catalog_check_s: float = Field(30.0, ge=0)
    sync_overlap_s: float = Field(300.0, ge=0)
    # Syncs requested back to back run at most once per this gap (the rest join the queued one).
    sync_min_gap_s: float = Field(1.0, ge=0, le=60)
    # The index is saved on the model volume (saved_index.py) after a build, and after syncs
    # that changed it at most this often (seconds; 0: never saved, every start reads Chroma).
    snapshot_save_s: float = Field(600.0, ge=0)
    index_batch_size: int = Field(256, ge=1, le=5000)
    offline_threads: int = Field(1, ge=1, le=16)
    # From this many tracks on, queries that would read every vector go through the vector
    # store's nearest-neighbour index instead (ann.py); below, every candidate is exact.
    ann_min_tracks: int = Field(200_000, ge=1)

    @cached_property
    def gemini_key(self) -> str | None:
        """The Gemini key: a secret file (compose secrets) wins over the variable. Never logged."""
        if self.google_api_key_file and self.google_api_key_file.is_file():
            return self.google_api_key_file.read_text().strip() or None
        return self.google_api_key.get_secret_value() if self.google_api_key else None

    @property
    def use_gemini(self) -> bool:
        return self.provider == "gemini" or (
            self.provider == "auto" and self.gemini_key is not None
        )

    @property
    def chroma_dir(self) -> Path:
        return self.chroma_path or self.model_dir("LLM") / "chroma"
