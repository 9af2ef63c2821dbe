"""The one request and response shape of every recommend route (m1, m2, m3, llm).

Each route subclasses these models: it narrows `source`, adds its own explanation fields to
the item (m1/m3 `drivers`, llm `reason`, ...) and documents what its `score` means, but the
fields below mean the same everywhere. The post-ranking steps they drive (filters, exclude,
per-artist cap, paging) run once, in musicspace_shared.selection.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import orjson
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
from musicspace_shared.ids import TrackId, UserId
from musicspace_shared.inputs import Flag, Limit, StrictBody
from musicspace_shared.recommendation_ids import PATTERN as RECOMMENDATION_ID_PATTERN
from musicspace_shared.recommendation_ids import new_id

MAX_EXCLUDE = 1000
_CURSOR = re.compile(r"^[A-Za-z0-9_-]{4,96}$")


def _feature_bounds() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in FEATURES:
        low, high = FEATURE_RANGES[name]
        for end, word in (("min", "lowest"), ("max", "highest")):
            fields[f"{end}_{name}"] = (
                float | None,
                Field(
                    None,
                    strict=True,
                    allow_inf_nan=False,
                    ge=low,
                    le=high,
                    description=f"{word} {name} ({low:g} to {high:g}), inclusive",
                ),
            )
    return fields


_FeatureBounds = create_model("_FeatureBounds", __base__=StrictBody, **_feature_bounds())  # type: ignore[call-overload]
Year = Annotated[int | None, Field(None, strict=True, ge=1000, le=2999)]


class TrackFilters(_FeatureBounds):  # type: ignore[misc,valid-type]
    """Hard filters: a track must pass all of them. A track without the attribute (no audio
    features, no release date) fails a range on it. Genre and subgenre compare without case."""

    genre: str | None = Field(None, min_length=1, max_length=64, examples=["rock"])
    subgenre: str | None = Field(None, min_length=1, max_length=64, examples=["hard rock"])
    min_year: Year = Field(None, description="album release year, inclusive")
    max_year: Year = Field(None, description="album release year, inclusive")

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
    def _ordered(self) -> TrackFilters:
        for name in (*FEATURES, "year"):
            low, high = getattr(self, f"min_{name}"), getattr(self, f"max_{name}")
            if low is not None and high is not None and low > high:
                raise ValueError(f"min_{name} must not exceed max_{name}")
        return self

    def ranges(self) -> dict[str, tuple[float | None, float | None]]:
        """The audio-feature ranges that are set: {feature: (low or None, high or None)}."""
        return {
            name: (getattr(self, f"min_{name}"), getattr(self, f"max_{name}"))
            for name in FEATURES
            if getattr(self, f"min_{name}") is not None or getattr(self, f"max_{name}") is not None
        }

    def years(self) -> tuple[int, int] | None:
        if self.min_year is None and self.max_year is None:
            return None
        return (self.min_year or 0, self.max_year or 9999)


def _cursor_text(value: Any) -> Any:
    if isinstance(value, str) and not _CURSOR.fullmatch(value):
        raise PydanticCustomError(
            "cursor", "not a cursor this API issued: send a previous answer's next_cursor as is"
        )
    return value


class RecommendRequest(StrictBody):
    """What every recommend route takes. Ranking happens first over the route's candidate list
    (its depth is in the route's description), then these steps in this order: filters,
    exclude, exclude_owned, max_per_artist, then the page at the cursor."""

    user_id: UserId
    limit: Limit = Field(20, le=200, description="items per page")
    cursor: str | None = Field(
        None,
        max_length=96,
        pattern=_CURSOR.pattern,
        description="the next_cursor of the previous page (opaque); absent: the first page. "
        "Send the same other fields with it: a cursor from another request, or issued before "
        "the model or catalog changed, is refused with 422.",
    )
    filters: TrackFilters | None = Field(None, description="hard filters on the tracks")
    exclude: list[TrackId] = Field(
        default_factory=list,
        max_length=MAX_EXCLUDE,
        description="track ids never to return (e.g. what the app showed already)",
    )
    exclude_owned: Flag = Field(
        True,
        description="leave out the user's own tracks: their library (PMS), and on m2 and m3 "
        "their liked tracks too; disliked tracks are always left out",
    )
    max_per_artist: int | None = Field(
        None,
        strict=True,
        ge=1,
        le=50,
        description="at most this many tracks per artist over all pages (absent: the route's "
        "default: 2 on m1 and m3, no cap on m2 and llm)",
    )

    elsewhere: ClassVar[dict[str, str]] = {
        "query": "llm recommend takes it (recommendations for a natural-language query)"
    }

    _check_cursor = field_validator("cursor", mode="before")(_cursor_text)

    def selection_key(self) -> str:
        """What a page of this request depends on besides limit and cursor (cache keys, cursors)."""
        data = self.model_dump(exclude={"limit", "cursor"}, exclude_defaults=True)
        if "exclude" in data:
            data["exclude"] = sorted(set(data["exclude"]))
        return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:20]

    def filter_key(self) -> str | None:
        """What the candidate list depends on (filters, exclude); None when neither is set."""
        if self.filters is None and not self.exclude:
            return None
        data = {
            "filters": self.filters.model_dump(exclude_none=True) if self.filters else None,
            "exclude": sorted(set(self.exclude)),
        }
        return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:20]


SCORE_DESCRIPTION = "0..1, higher is better; what it measures is the route's (see its schema)"


class RecommendedItem(BaseModel):
    """One recommended track; each route adds its explanations."""

    track_id: str
    title: str | None
    artist: str | None
    score: float = Field(ge=0, le=1, description=SCORE_DESCRIPTION)


class RecommendPage(BaseModel):
    """One page of recommendations; each route narrows `source` and the item type."""

    user_id: int
    source: str = Field(description="the service that ranked this page (m1, m2, m3, llm)")
    recommendation_id: str = Field(
        pattern=RECOMMENDATION_ID_PATTERN,
        description="opaque id of this answer, fresh on every call: send it with the events "
        "(plays, likes, clicks, impressions) of what it showed",
        examples=["m1.none.5f2c9a1e0b7d4c3a"],
    )
    next_cursor: str | None = Field(
        description="send as `cursor` (with the same other fields) for the next page; null: "
        "no more results (the filters left fewer, or the candidate list ended)"
    )
    items: list[RecommendedItem]


@dataclass(frozen=True)
class RenderedPage:
    """A page ready to send but for its recommendation_id, so routes can cache it: `fields`
    are the page's other top-level fields (with `source`), `items_json` its items' JSON."""

    fields: dict[str, Any]
    items_json: bytes

    def body(self) -> bytes:
        """The JSON body, with a fresh recommendation_id."""
        rid = new_id(self.fields["source"])
        return orjson.dumps(
            {**self.fields, "recommendation_id": rid, "items": orjson.Fragment(self.items_json)}
        )
