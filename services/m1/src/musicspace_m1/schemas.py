"""m1 request/response models."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from musicspace_shared.ids import UserId
from musicspace_shared.inputs import StrictBody
from musicspace_shared.recommend import RecommendedItem, RecommendPage
from musicspace_shared.recommend import RecommendRequest as CommonRequest


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


class RecommendRequest(CommonRequest):
    """The common recommend request (musicspace_shared.recommend); m1 ranks a candidate list
    of 400 tracks per request (filters, exclude and exclude_owned apply before it is drawn, so
    all 400 pass them), then caps per artist (default M1_MAX_PER_ARTIST, 2) and pages it."""


class RecommendedTrack(RecommendedItem):
    score: float = Field(
        ge=0,
        le=1,
        description="the global ranker's probability (gradient-boosted classifier) that the "
        "track belongs with the user's tracks, from the hybrid features",
    )
    drivers: dict[str, float] = Field(default_factory=dict, description="what drove the score")


class RecommendResponse(RecommendPage):
    source: Literal["m1"] = "m1"
    model: Literal["personal", "profile_fallback"]
    version: str | None
    items: list[RecommendedTrack]  # type: ignore[assignment]


class StatusResponse(BaseModel):
    user_id: int
    trained: bool
    fallback: bool
    tracks_used: int
    trained_at: datetime | None
    version: str | None
    last_used_at: datetime | None
    reason: str | None = Field(None, description="why the user has the profile fallback")
