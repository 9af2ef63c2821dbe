"""enrichment request/response models."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from musicspace_shared.ids import UserId
from musicspace_shared.inputs import StrictBody

StepStatus = Literal["ok", "skipped", "unavailable", "not_ready", "failed"]
JobState = Literal["idle", "queued", "running", "waiting", "succeeded", "failed"]


class InitModelsRequest(StrictBody):
    user_id: UserId


class StepReport(BaseModel):
    name: str = Field(description="enrich | m1 | m2_svm | m3 | llm_sync")
    status: StepStatus
    detail: str | None = None
    http_status: int | None = Field(None, description="the peer's HTTP status, when it answered")
    result: dict[str, Any] | None = Field(
        None, description="the peer's answer or the step's counts"
    )


class InitModelsResponse(BaseModel):
    user_id: int
    ok: bool = Field(description="every step is ok or skipped")
    steps: list[StepReport]


class ItemFailure(BaseModel):
    track_id: str
    attempts: int
    error: str | None


class JobStatus(BaseModel):
    job_id: int | None
    state: JobState
    created: bool | None = Field(
        None,
        description="enrich-all only: false when a job was already active or none was needed",
    )
    total: int = 0
    done: int = 0
    failed: int = 0
    remaining: int = 0
    rate_per_s: float | None = Field(None, description="tracks processed per second")
    eta_s: float | None = Field(None, description="seconds to finish at the current rate")
    waiting: bool = False
    waiting_reason: str | None = None
    last_error: str | None = None
    owner: str | None = Field(
        None,
        description="the worker's host and pid (admin key only; also GET /admin/enrich-status)",
    )
    owner_alive: bool = False
    started_at: datetime | None = None
    updated_at: datetime | None = None
    heartbeat_at: datetime | None = None
    finished_at: datetime | None = None
    failures: list[ItemFailure] = Field(
        default_factory=list, description="items given up on (first N)"
    )
