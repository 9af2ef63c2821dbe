"""llm request/response models."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    Field,
    field_validator,
)

from musicspace_shared.inputs import StrictBody
from musicspace_shared.recommend import RecommendedItem, RecommendPage, TrackFilters
from musicspace_shared.recommend import RecommendRequest as CommonRequest

Query = Field(
    min_length=1,
    max_length=500,
    description="what the user typed: a title, an artist (in any script), a description "
    "(English, Korean, Spanish), numbers ('over 160 bpm') and eras ('from the 80s')",
)
Limit = Field(10, strict=True, ge=1, le=50)


# The request's hard filters: the shared model every recommend route takes (search too).
SearchFiltersIn = TrackFilters


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


class RecommendRequest(_QueryBody, CommonRequest):
    """The common recommend request (musicspace_shared.recommend) plus the query; llm ranks
    the best 200 tracks for the query and the user's profile (the filters apply before
    ranking, as search's do), then caps per artist (no cap by default) and pages them."""


SCORE = Field(
    ge=0,
    le=1,
    description="the fused relevance (structured match to the query + 0.35 x document "
    "similarity + popularity, + the user's profile on recommend) divided by the highest one "
    "for this query and filters, so 1 is the best-scoring result and 0.5 half its relevance "
    "(`closest` tracks follow the matches whatever their score). "
    "Compare within one answer (its pages included), not across queries; `closest` says "
    "whether the track matches the query at all",
)


class TrackResult(RecommendedItem):
    album: str | None
    genre: str | None
    subgenre: str | None
    score: float = SCORE
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


class RecommendResponse(SearchResponse, RecommendPage):  # type: ignore[misc]
    source: Literal["llm"] = "llm"
    user_id: int
    items: list[TrackResult]
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
    last_build: dict[str, Any] = Field(
        default_factory=dict,
        description="the start's build: read and embedded from the DB, or restored (restored_from: "
        "snapshot on the volume | collection) and the sync that caught up; seconds",
    )
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
