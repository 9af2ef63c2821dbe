"""llm request/response models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, create_model, field_validator, model_validator

from musicspace_shared.features import FEATURE_RANGES, FEATURES
from musicspace_shared.ids import UserId

Query = Field(
    min_length=1,
    max_length=500,
    description="what the user typed: a title, an artist (in any script), a description "
    "(English, Korean, Spanish), numbers ('over 160 bpm') and eras ('from the 80s')",
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
    matched: list[str] = Field(
        default_factory=list,
        description="what of the query this track has: concepts (subgenre:, genre:, feature:, "
        "era:), names (artist:, title:, name:), similar:<artist>, range:<feature>, years",
    )
    closest: bool = Field(
        False, description="matches nothing of the query (or not its filters): only the nearest"
    )
    audio_features: dict[str, float] = Field(default_factory=dict)


class Range(BaseModel):
    min: float | None = None
    max: float | None = None


class Intent(BaseModel):
    subgenres: dict[str, float] = Field(default_factory=dict)
    genres: dict[str, float] = Field(default_factory=dict)
    features: dict[str, float] = Field(default_factory=dict)
    eras: dict[str, float] = Field(default_factory=dict)
    ranges: dict[str, Range] = Field(
        default_factory=dict, description="hard filters read from the query, per audio feature"
    )
    years: Range | None = Field(None, description="hard filter: album release years (inclusive)")
    artist: str | None = Field(None, description="the catalog artist the query names")
    similar_to: str | None = Field(
        None, description="'like <artist>': tracks like this artist's, by other artists"
    )
    named: str | None = Field(None, description="the query words read as a title or a name")
    parser: str = Field("offline", description="who read the query: offline or gemini")


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
    seen: int = 0
    changed: int = 0
    embedded: int = 0
    tracks: int = 0
