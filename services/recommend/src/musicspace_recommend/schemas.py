"""recommend request/response models."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field, field_validator

from musicspace_shared.inputs import Limit
from musicspace_shared.recommend import RecommendRequest as SharedRequest

Status = Literal[
    "contributed", "empty", "unavailable", "not_ready", "timeout", "rejected", "not_asked"
]
Source = Literal["blend", "m1", "m2", "m3", "llm", "popular"]


class RecommendRequest(SharedRequest):
    """The common recommend request (musicspace_shared.recommend) plus an optional `query`.
    `filters`, `exclude`, `exclude_owned` and `max_per_artist` go to every model asked, so
    each spends its depth on tracks that pass them, and are applied again to the fused list;
    `max_per_artist` counts from the top of the fused list over all pages (absent: no cap
    beyond the models' own). Pages come from one fused list of fixed depth: each model is asked
    for RECOMMEND_DEPTH tracks (50; at most 200, llm at most 50) whatever the page, so pages
    concatenate without overlap or skip while the inputs and the contributing models are
    unchanged, and paging ends where that list ends."""

    limit: Limit = Field(20, le=100, description="items per page")
    query: str | None = Field(
        None,
        min_length=1,
        max_length=500,
        description="optional natural-language wish ('calm piano for studying'): llm search "
        "ranks by it and the other models re-rank llm's tracks for this user",
    )

    elsewhere: ClassVar[dict[str, str]] = {}

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
    next_cursor: str | None = Field(
        description="send as `cursor` (with the same other fields) for the next page; null: "
        "no more results (the filters left fewer, or the fused list ended)"
    )
    outcomes: list[ModelOutcome] = Field(
        description="every model, with what it did for this answer (and why not)"
    )
    items: list[RecommendItem]
