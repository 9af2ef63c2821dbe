"""m3 request/response models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator

from musicspace_m3.events import EXPOSURE_KINDS, check_occurred_at
from musicspace_shared.ids import TrackId, UserId
from musicspace_shared.inputs import StrictBody
from musicspace_shared.recommend import RecommendedItem, RecommendPage
from musicspace_shared.recommend import RecommendRequest as CommonRequest
from musicspace_shared.recommendation_ids import RecommendationId

EVENT_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"


class TrainRequest(StrictBody):
    user_id: UserId


class TrainResponse(BaseModel):
    user_id: int
    model: Literal["personal", "global"] = Field(description="which model now serves this user")
    reason: str | None = Field(None, description="why the global model serves (too little data)")
    positives_used: int = Field(description="the user's PMS tracks, likes and plays used")
    rows: int = 0
    version: str | None = None
    base_version: str | None = Field(
        None, description="global model version it was fine-tuned from"
    )
    trained_at: datetime | None = None
    metrics: dict[str, float] = Field(default_factory=dict)


class RecommendRequest(CommonRequest):
    """The common recommend request (musicspace_shared.recommend); m3 ranks a candidate list
    of M3_N_CANDIDATES (600) tracks per request (filters, exclude and exclude_owned apply
    before it is drawn, so all of them pass), then caps per artist (default
    M3_MAX_PER_ARTIST, 2) and pages it."""


class RecommendedTrack(RecommendedItem):
    score: float = Field(
        ge=0,
        le=1,
        description="the CatBoost ranker's raw score through the logistic function "
        "(1 / (1 + e^-raw)): order-preserving, 0.5 is a raw score of 0; a relevance for "
        "ranking, not a calibrated probability",
    )
    drivers: dict[str, float] = Field(
        default_factory=dict,
        description="top contributing feature groups: their effect on the raw score",
    )


class RecommendResponse(RecommendPage):
    source: Literal["m3"] = "m3"
    model: Literal["personal", "global"]
    version: str
    candidates: int = Field(description="candidates ranked before filters, cap and paging")
    items: list[RecommendedTrack]  # type: ignore[assignment]


class EventIn(StrictBody):
    event_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=EVENT_ID_PATTERN,
        description="client-chosen, unique per user; retries reuse it",
    )
    user_id: UserId
    track_id: TrackId
    kind: Literal["play", "like", "dislike", "unlike", "skip", "click", "impression"] = Field(
        description="play, skip, like, dislike, unlike change the user's interactions (what m3 "
        "learns from); impression (a track was shown) and click (it was tapped) are stored for "
        "online measurement only and need `recommendation_id`"
    )
    occurred_at: Annotated[datetime | None, AfterValidator(check_occurred_at)] = Field(
        None, description="when it happened: 2000-01-01 .. 5 minutes ahead of the server (UTC)"
    )
    recommendation_id: RecommendationId | None = Field(
        None,
        description="the `recommendation_id` of the recommend answer that showed this track "
        "(any recommend route): attributes the event to that answer's model and A/B arm in "
        "the online report and the feedback counters. Required for click and impression.",
    )

    @model_validator(mode="after")
    def _exposure_names_its_answer(self) -> EventIn:
        if self.kind in EXPOSURE_KINDS and self.recommendation_id is None:
            raise ValueError(
                f"a {self.kind} event needs the recommendation_id of the answer that showed it"
            )
        return self


class EventsRequest(StrictBody):
    events: list[EventIn] = Field(min_length=1, max_length=1000)


class EventOutcome(BaseModel):
    event_id: str
    status: Literal["recorded", "duplicate", "unknown_user", "unknown_track"]


class EventsResponse(BaseModel):
    received: int
    recorded: int
    duplicates: int
    rejected: int = Field(description="unknown user or track: not stored, see results")
    results: list[EventOutcome]
