"""m1 request/response models."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from musicspace_shared.ids import UserId
from musicspace_shared.inputs import Flag, Limit, StrictBody


class TrainRequest(StrictBody):
    user_id: UserId


class TrainResponse(BaseModel):
    user_id: int
    model: Literal["personal", "profile_fallback"]
    reason: str | None = None
    tracks_used: int
    version: str | None = None
    trained_at: datetime | None = None
    metrics: dict[str, float] = Field(default_factory=dict)


class RecommendRequest(StrictBody):
    user_id: UserId
    limit: Limit = Field(20, le=200)
    exclude_owned: Flag = True
    max_per_artist: int | None = Field(
        None, strict=True, ge=1, le=50, description="default: the service setting (2)"
    )


class RecommendedTrack(BaseModel):
    track_id: str
    title: str | None
    artist: str | None
    score: float
    drivers: dict[str, float] = Field(default_factory=dict, description="what drove the score")


class RecommendResponse(BaseModel):
    user_id: int
    model: Literal["personal", "profile_fallback"]
    version: str | None
    items: list[RecommendedTrack]


class StatusResponse(BaseModel):
    user_id: int
    trained: bool
    fallback: bool
    tracks_used: int
    trained_at: datetime | None
    version: str | None
    last_used_at: datetime | None
    reason: str | None = Field(None, description="why the user has the profile fallback")
