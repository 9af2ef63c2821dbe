"""llm request/response models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, create_model, field_validator, model_validator

from musicspace_shared.features import FEATURE_RANGES, FEATURES
from musicspace_shared.ids import UserId

Query = Field(
    min_length=1, max_length=500, description="natural-language query (English or Korean)"
)
Limit = Field(10, ge=1, le=50)


def _feature_bounds() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in FEATURES:
        low, high = FEATURE_RANGES[name]
        fields[f"min_{name}"] = (float | None, Field(None, ge=low, le=high))
        fields[f"max_{name}"] = (float | None, Field(None, ge=low, le=high))
    return fields


_FeatureBounds = create_model("_FeatureBounds", **_feature_bounds())  # type: ignore[call-overload]


class SearchFiltersIn(_FeatureBounds):  # type: ignore[misc,valid-type]
    """Hard filters: a track must match all of them (a track without features fails a range)."""

    genre: str | None = Field(None, min_length=1, max_length=64)
    subgenre: str | None = Field(None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _ordered(self) -> SearchFiltersIn:
        for name in FEATURES:
            low, high = getattr(self, f"min_{name}"), getattr(self, f"max_{name}")
            if low is not None and high is not None and low > high:
                raise ValueError(f"min_{name} must not exceed max_{name}")
        return self

    def ranges(self) -> dict[str, tuple[float | None, float | None]]:
        return {
            name: (getattr(self, f"min_{name}"), getattr(self, f"max_{name}"))
            for name in FEATURES
            if getattr(self, f"min_{name}") is not None or getattr(self, f"max_{name}") is not None
        }


class _QueryBody(BaseModel):
    query: str = Query
    limit: int = Limit

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query must not be blank")
        return value.strip()


class SearchRequest(_QueryBody):
    filters: SearchFiltersIn | None = None


class RecommendRequest(_QueryBody):
    user_id: UserId


class TrackResult(BaseModel):
    track_id: str
    title: str | None
    artist: str | None
    album: str | None
    genre: str | None
    subgenre: str | None
    score: float
    reason: str
    matched: list[str] = Field(default_factory=list, description="query concepts this track has")
    audio_features: dict[str, float] = Field(default_factory=dict)


class Intent(BaseModel):
    subgenres: dict[str, float] = Field(default_factory=dict)
    genres: dict[str, float] = Field(default_factory=dict)
    features: dict[str, float] = Field(default_factory=dict)
    eras: dict[str, float] = Field(default_factory=dict)


class SearchResponse(BaseModel):
    query: str
    provider: str
    model: str
    intent: Intent
    items: list[TrackResult]


class RecommendResponse(SearchResponse):
    user_id: int
    profile_tracks: int = Field(description="the user's tracks the profile was built from")


class IndexStatus(BaseModel):
    state: str
    collection: str
    provider: str
    model: str
    tracks: int
    watermark: str | None
    progress: list[int]
    last_sync: dict[str, Any]
    error: str | None


class SyncResponse(BaseModel):
    """Syncs run one at a time; requests made while one runs share ONE queued run."""

    accepted: Literal["started", "queued", "joined"] = Field(
        description="started now, queued after the running sync, or joined the queued one"
    )
    running: bool
    pending: bool = Field(description="a sync is queued behind the running one")
    last_sync: dict[str, Any] = Field(
        description="the last finished sync: keys scanned, rows read, changed, embedded, tracks"
    )
