"""Settings every service shares; each service subclasses with its own env prefix."""

from __future__ import annotations

import os
import warnings
from functools import cached_property, partial
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from musicspace_shared.registry import local_url

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./var/musicspace.db"


class CommonSettings(BaseSettings):
    """Fields read the same way by every service.

    Shared fields are read without a prefix (DATABASE_URL, MODEL_ROOT, ...) so one
    environment configures the whole stack; a service's own fields carry its prefix.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field(DEFAULT_SQLITE_URL, validation_alias="DATABASE_URL")
    db_pool_size: int = Field(10, validation_alias="DB_POOL_SIZE")
    db_pool_recycle_s: int = Field(1800, validation_alias="DB_POOL_RECYCLE_S")
    db_connect_timeout_s: float = Field(3.0, validation_alias="DB_CONNECT_TIMEOUT_S")
    # Root of the model volumes: <model_root>/M1, <model_root>/M2, ... (compose mounts /app).
    model_root: Path = Field(Path("./var/models"), validation_alias="MODEL_ROOT")
    cors_origins: list[str] = Field(
        default_factory=lambda: ["http://localhost:3000", "http://localhost:5173"],
        validation_alias="CORS_ORIGINS",
    )
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    # Every this many seconds the frozen heap is thawed, collected once and frozen again
    # (musicspace_shared.heap): reference cycles among replaced models and catalog indexes
    # are freed at the cost of one full collection (~0.1 s) instead of one every ~1.5 s.
    heap_resettle_s: float = Field(600.0, gt=0, validation_alias="HEAP_RESETTLE_S")
    # The three credentials (musicspace_shared.auth); a *_FILE (compose secret) wins.
    admin_api_key: SecretStr | None = Field(None, validation_alias="ADMIN_API_KEY")
    admin_api_key_file: Path | None = Field(None, validation_alias="ADMIN_API_KEY_FILE")
    app_api_key: SecretStr | None = Field(None, validation_alias="APP_API_KEY")
    app_api_key_file: Path | None = Field(None, validation_alias="APP_API_KEY_FILE")
    user_token_secret: SecretStr | None = Field(None, validation_alias="USER_TOKEN_SECRET")
    user_token_secret_file: Path | None = Field(None, validation_alias="USER_TOKEN_SECRET_FILE")
    # Optional: when set, user tokens must carry this `aud` claim.
    user_token_audience: str | None = Field(None, validation_alias="USER_TOKEN_AUDIENCE")
    # Requests per second (sustained, burst) per credential in each service process; 0: no limit.
    # A user token is one bucket per user; the app credential is one bucket for the web backend.
    rate_limit_user_per_s: float = Field(20.0, ge=0, validation_alias="RATE_LIMIT_USER_PER_S")
    rate_limit_user_burst: int = Field(40, ge=1, validation_alias="RATE_LIMIT_USER_BURST")
    rate_limit_app_per_s: float = Field(1000.0, ge=0, validation_alias="RATE_LIMIT_APP_PER_S")
    rate_limit_app_burst: int = Field(2000, ge=1, validation_alias="RATE_LIMIT_APP_BURST")
    # Distinct users whose training may run or wait at once in one process; beyond it: 429.
    train_queue_limit: int = Field(8, ge=1, validation_alias="TRAIN_QUEUE_LIMIT")
    # Peer base URLs (defaults: the registry's local ports; compose sets the service names).
    m1_url: str = Field(default_factory=partial(local_url, "m1"), validation_alias="M1_URL")
    m2_url: str = Field(default_factory=partial(local_url, "m2"), validation_alias="M2_URL")
    m3_url: str = Field(default_factory=partial(local_url, "m3"), validation_alias="M3_URL")
    llm_url: str = Field(default_factory=partial(local_url, "llm"), validation_alias="LLM_URL")
    enrichment_url: str = Field(
        default_factory=partial(local_url, "enrichment"), validation_alias="ENRICHMENT_URL"
    )
    recommend_url: str = Field(
        default_factory=partial(local_url, "recommend"), validation_alias="RECOMMEND_URL"
    )
    http_timeout_s: float = Field(30.0, validation_alias="HTTP_TIMEOUT_S")
    http_retries: int = Field(3, validation_alias="HTTP_RETRIES")
    # The fields below are read with the service's own prefix (M1_CATALOG_CHECK_S, ...); a
    # service changes a default by declaring the field again with its value.
    # Seconds between checks of the catalog (musicspace_shared.catalog.catalog_version: track
    # count and latest updated_at); what is built from it is rebuilt in the background only
    # when the answer moved.
    catalog_check_s: float = Field(10.0, ge=0)
    # Keep what is built from the DB (m2's content space, m3's snapshot) on the model volume,
    # so a replica that starts reads it instead of building (musicspace_shared.saved_state):
    # written by `musicspace train m2|m3`, by a start that had to build, and by each rebuild.
    state_on_volume: bool = True
    # Seconds between looks at a held model's sidecar on the volume (musicspace_shared.model_holder);
    # 0: before every use (one stat()).
    reload_check_s: float = Field(2.0, ge=0)
    # Threads for CPU work (scoring, training) off the event loop (musicspace_shared.cpu);
    # 0: one per core, at most 4.
    cpu_workers: int = Field(0, ge=0, le=64)

    # Old names still read (with a warning): old name -> current field.
    renamed: ClassVar[dict[str, str]] = {"catalog_refresh_s": "catalog_check_s"}

    @model_validator(mode="before")
    @classmethod
    def _read_renamed(cls, data: Any) -> Any:
        """A setting under its old name (argument or `<PREFIX><OLD_NAME>` in the environment)
        still applies when the current name is not given."""
        if not isinstance(data, dict):
            return data
        prefix = str(cls.model_config.get("env_prefix") or "")
        for old, new in cls.renamed.items():
            value = data.pop(old, None)
            if value is None:
                value = os.environ.get(f"{prefix}{old}".upper())
            if value is not None and new not in data:
                warnings.warn(
                    f"{prefix}{old.upper()} is deprecated: use {prefix}{new.upper()}",
                    DeprecationWarning,
                    stacklevel=2,
                )
                data[new] = value
        return data

    @cached_property
    def admin_key(self) -> str | None:
        """The admin credential (ops routes)."""
        return _secret(self.admin_api_key, self.admin_api_key_file)

    @cached_property
    def app_key(self) -> str | None:
        """The web app backend's credential: may act for any user."""
        return _secret(self.app_api_key, self.app_api_key_file)

    @cached_property
    def user_token_key(self) -> str | None:
        """The HS256 key user tokens (JWT) are signed with."""
        return _secret(self.user_token_secret, self.user_token_secret_file)

    def peer_headers(self) -> dict[str, str]:
        """What this service sends to a peer: the app credential (the admin key without one)."""
        key = self.app_key or self.admin_key
        return {"Authorization": f"Bearer {key}"} if key else {}

    def model_dir(self, family: str) -> Path:
        """The volume of one model family, e.g. model_dir("M1") -> <model_root>/M1."""
        return self.model_root / family


def _secret(value: SecretStr | None, file: Path | None) -> str | None:
    """A secret file (compose secrets) wins over the variable; surrounding whitespace
    (the file's newline) is not part of the secret."""
    if file and file.is_file():
        return file.read_text().strip() or None
    return value.get_secret_value() or None if value else None
