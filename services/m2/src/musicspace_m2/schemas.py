"""m2 request/response models. predict-audio is a contract enrichment depends on: keep it stable."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from musicspace_shared.ids import TrackId
from musicspace_shared.inputs import Flag, StrictBody
from musicspace_shared.recommend import RecommendedItem, RecommendPage
from musicspace_shared.recommend import RecommendRequest as CommonRequest

MAX_BATCH = 1000


class TextItem(StrictBody):
    artist: str = Field(min_length=1, max_length=512)
    title: str = Field(min_length=1, max_length=512)
    genre: str | None = Field(None, max_length=64)
    subgenre: str | None = Field(None, max_length=64)
    album: str | None = Field(None, max_length=512)
    popularity: int | None = Field(None, strict=True, ge=0, le=100)


class PredictItem(StrictBody):
    """Either a track id (looked up in the DB) or the text of a track."""

    track_id: TrackId | None = None
    artist: str | None = Field(None, min_length=1, max_length=512)
    title: str | None = Field(None, min_length=1, max_length=512)
    genre: str | None = Field(None, max_length=64)
    subgenre: str | None = Field(None, max_length=64)
    album: str | None = Field(None, max_length=512)
    popularity: int | None = Field(None, strict=True, ge=0, le=100)

    @model_validator(mode="after")
    def _one_kind(self) -> PredictItem:
        if self.track_id is None and (self.artist is None or self.title is None):
            raise ValueError("each item needs a track_id, or an artist and a title")
        return self


class PredictRequest(StrictBody):
    items: list[PredictItem] = Field(min_length=1, max_length=MAX_BATCH)
    intervals: Flag = Field(
        True,
        description="false: leave out the per-feature intervals (bulk callers that store values only)",
    )


class PredictedFeatures(BaseModel):
    danceability: float
    energy: float
    valence: float
    acousticness: float
    instrumentalness: float
    liveness: float
    speechiness: float
    tempo: float
    loudness: float


class PredictResult(BaseModel):
    index: int = Field(description="position of the item in the request")
    track_id: str | None = None
    ok: bool
    error: str | None = Field(
        None, description="why this item has no prediction (e.g. unknown track id)"
    )
    features: PredictedFeatures | None = None
    confidence: float | None = Field(None, ge=0, le=1, description="0..1, higher is more reliable")
    intervals: dict[str, tuple[float, float]] | None = Field(
        None, description="per-feature ~80% interval"
    )


class PredictResponse(BaseModel):
    source: Literal["m2"] = "m2"
    model_version: str
    results: list[PredictResult]


class RecommendRequest(CommonRequest):
    """The common recommend request (musicspace_shared.recommend); m2 scores the whole
    catalog with the filters and exclusions applied, ranks the best 1,000 distinct recordings
    and pages them (no per-artist cap unless max_per_artist is given)."""


class SimilarTrack(BaseModel):
    track_id: str
    title: str | None
    artist: str | None
    genre: str | None
    subgenre: str | None
    score: float = Field(
        ge=0,
        le=1,
        description="text and audio similarity: the sum of per-block weighted cosines (artist, "
        "title, album, genre tags, audio features, popularity), mapped linearly from its range "
        "[-0.49, 2.465] onto 0..1 (1: same artist, title, album, tags, audio, top popularity)",
    )


class SimilarResponse(BaseModel):
    track_id: str
    model_version: str
    items: list[SimilarTrack]


Strategy = Literal["personal_svm", "fallback_similar_tracks", "fallback_popular"]


class RecommendedTrack(RecommendedItem):
    genre: str | None
    subgenre: str | None
    score: float = Field(
        ge=0,
        le=1,
        description="personal_svm: the SVM's margin through the logistic function (above 0.5: "
        "on the side of the user's tracks); fallback_similar_tracks: similarity to the mean of "
        "the user's tracks, mapped like /similar's score; fallback_popular: popularity / 100",
    )


class RecommendResponse(RecommendPage):
    source: Literal["m2"] = "m2"
    user_id: int
    strategy: Strategy = Field(description="personal_svm, or the fallback that served this user")
    fallback: bool
    reason: str | None = Field(None, description="why the fallback served")
    tracks_used: int = Field(description="positive tracks (PMS + likes) the model saw")
    model_version: str = Field(
        description="version of the m2 feature model behind the content space"
    )
    svm_version: str | None = None
    items: list[RecommendedTrack]  # type: ignore[assignment]
