"""llm request/response models."""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    Field,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from musicspace_shared.features import FEATURE_RANGES, FEATURES
from musicspace_shared.ids import UserId
from musicspace_shared.inputs import StrictBody

Query = Field(
    min_length=1,
    max_length=500,
    description="what the user typed: a title, an artist (in any script), a description "
    "(English, Korean, Spanish), numbers ('over 160 bpm') and eras ('from the 80s')",
)
Limit = Field(10, strict=True, ge=1, le=50)


def _feature_bounds() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in FEATURES:
        low, high = FEATURE_RANGES[name]
        bound = Field(None, strict=True, allow_inf_nan=False, ge=low, le=high)
        fields[f"min_{name}"] = (float | None, bound)
        fields[f"max_{name}"] = (float | None, bound)
    return fields


_FeatureBounds = create_model("_FeatureBounds", __base__=StrictBody, **_feature_bounds())  # type: ignore[call-overload]


class SearchFiltersIn(_FeatureBounds):  # type: ignore[misc,valid-type]
    """Hard filters: a track must match all of them (a track without features fails a range)."""

    genre: str | None = Field(None, min_length=1, max_length=64)
    subgenre: str | None = Field(None, min_length=1, max_length=64)

    @field_validator(
        *(f"{end}_{name}" for name in FEATURES for end in ("min", "max")), mode="before"
    )
    @classmethod
    def _finite(cls, value: Any, info: ValidationInfo) -> Any:
        """NaN and infinities are refused with the range, not with a misleading "<= 250"."""
        if isinstance(value, float) and not math.isfinite(value):
            low, high = FEATURE_RANGES[info.field_name.split("_", 1)[1]]  # type: ignore[union-attr]
            raise PydanticCustomError(
                "finite_number", f"must be a finite number from {low:g} to {high:g}"
            )
        return value

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


class _QueryBody(StrictBody):
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

    elsewhere: ClassVar[dict[str, str]] = {
        "user_id": "llm recommend takes it (search is the same for everyone)"
    }


class RecommendRequest(_QueryBody):
    user_id: UserId

    elsewhere: ClassVar[dict[str, str]] = {
        "filters": "llm search takes it; recommend ranks by the query and the user's profile"
    }


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
    watermark: str | None = Field(description="the newest updated_at the index has read")
    sync_from: str | None = Field(
        None,
        description="the durable watermark, kept in the vector store: where the next sync's "
        "key scan starts, also after a restart",
    )
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
