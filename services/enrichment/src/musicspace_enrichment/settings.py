"""enrichment settings: env prefix ENRICHMENT_, shared fields (DATABASE_URL, M2_URL, ...) from CommonSettings."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from musicspace_shared.settings import CommonSettings


class Settings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="ENRICHMENT_")

    # m2 accepts at most 1000 items per predict-audio call; bigger batches mean fewer round trips.
    batch_size: int = Field(1000, ge=1, le=1000)
    # predict-audio calls in flight while the previous batch is written (a read-ahead pipeline).
    concurrency: int = Field(2, ge=1, le=8)
    # A job whose owner has not heartbeaten for lease_s is taken over by another process.
    lease_s: float = Field(30.0, ge=1.0, le=3600.0)
    heartbeat_s: float | None = Field(None, gt=0, description="default lease_s / 3")
    # Per-item bound: an item m2 answers with an error (or that makes a batch fail) is
    # retried this many times in all, then listed in job_item_failure.
    max_item_attempts: int = Field(3, ge=1, le=20)
    item_retry_delay_s: float = Field(0.5, ge=0.0, le=60.0)
    # m2 down: the job waits with exponential backoff (with jitter) between these bounds.
    backoff_initial_s: float = Field(1.0, gt=0.0, le=60.0)
    backoff_max_s: float = Field(60.0, gt=0.0, le=3600.0)
    # Pacing: a pause after each committed batch, to spare a busy DB (0 = full speed).
    pause_between_batches_s: float = Field(0.0, ge=0.0, le=60.0)
    predict_timeout_s: float = Field(120.0, gt=0.0)
    train_timeout_s: float = Field(300.0, gt=0.0)
    # On startup, take over an interrupted job whose owner is gone.
    resume_jobs: bool = True
    failures_listed: int = Field(100, ge=0, le=10_000)
    # After enriching, ask llm to re-sync its index for the changed tracks (if it offers that).
    notify_llm: bool = True
    # llm answers a sync request at once (it runs in the background, coalesced): a short
    # timeout and no retries, so a slow llm is never sent the same request again and again.
    llm_sync_timeout_s: float = Field(5.0, gt=0.0, le=60.0)
    # Each replica's DELETE /admin/users/{id} during an erasure (files and caches: quick).
    forget_timeout_s: float = Field(10.0, gt=0.0, le=120.0)

    @property
    def heartbeat_interval_s(self) -> float:
        return self.heartbeat_s or max(0.5, self.lease_s / 3)
