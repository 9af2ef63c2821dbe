"""recommend request/response models."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field, field_validator

from musicspace_shared.ids import TrackId, UserId
from musicspace_shared.inputs import Limit, StrictBody

Status = Literal[
    "contributed", "empty", "unavailable", "not_ready", "timeout", "rejected", "not_asked"
]
Source = Literal["blend", "m1", "m2", "m3", "llm", "popular"]
_MODEL_ROUTES = "the model routes (/api/m1, /api/m2, /api/m3, /api/llm recommend)"


class RecommendRequest(StrictBody):
    user_id: UserId
    limit: Limit = Field(20, le=100)
    query: str | None = Field(
        None,
        min_length=1,
        max_length=500,
        description="optional natural-language wish ('calm piano for studying'): llm search "
        "ranks by it and the other models re-rank llm's tracks for this user",
    )
    exclude: list[TrackId] = Field(
        default_factory=list,
        max_length=500,
        description="track ids never to return (e.g. what the app shows already); the "
        "user's own tracks are always left out",
    )

    elsewhere: ClassVar[dict[str, str]] = {
        name: f"not taken by /api/recommend; {_MODEL_ROUTES} take it"
        for name in ("cursor", "filters", "max_per_artist", "exclude_owned")
    }

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("query must not be blank (leave it out for no query)")
        return value.strip() if value is not None else None


class RecommendItem(BaseModel):
    track_id: str
    title: str | None = None
    artist: str | None = None
    score: float = Field(
        ge=0,
        le=1,
        description="normalised fused score: the reciprocal-rank-fusion score over the score "
        "of a track ranked first by every contributing model (1.0 = first everywhere; one "
        "model's answer alone: (k + 1) / (k + rank)). Orders this answer; not comparable "
        "across answers",
    )
    ranks: dict[str, int] = Field(
        default_factory=dict,
        description="the track's 1-based rank in each contributing model's list (popular "
        "and new for users without data): why it is here",
    )
    reason: str | None = Field(None, description="for popular answers: e.g. 'popular in rock'")


class ModelOutcome(BaseModel):
    model: str = Field(description="m1, m2, m3 or llm")
    status: Status = Field(
        description="contributed; empty (answered nothing for this user); unavailable (down); "
        "not_ready (up, no model yet); timeout (slower than its deadline); rejected (refused "
        "the request, e.g. unknown to it); not_asked (does not fit the user's data, no query "
        "for llm, or not in the user's arm)"
    )
    detail: str | None = Field(None, description="why, when it did not contribute")
    http_status: int | None = Field(None, description="the model's HTTP status, when it answered")
    elapsed_ms: float | None = Field(None, description="time until its answer or the deadline")
    items: int = Field(0, description="tracks it ranked")


class RecommendResponse(BaseModel):
    user_id: int
    recommendation_id: str = Field(
        description="opaque id of this answer: send it with the events (plays, clicks, "
        "impressions, ...) on its tracks, POST /api/m3/events, to measure it online"
    )
    arm: str = Field(description="the user's A/B arm (RECOMMEND_ARMS): the strategy asked")
    source: Source = Field(
        description="what answered: blend (two or more models fused), one model's name (the "
        "arm's model, or the only one that answered), or popular (no data, or every model "
        "failed)"
    )
    models: list[str] = Field(description="the models whose rankings are in this answer")
    outcomes: list[ModelOutcome] = Field(
        description="every model, with what it did for this answer (and why not)"
    )
    items: list[RecommendItem]
