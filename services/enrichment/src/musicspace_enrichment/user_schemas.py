"""Request and response models of the ingestion and erasure routes (users, libraries, tracks).

Strict like every body (musicspace_shared.inputs): unknown fields, coerced numbers and
out-of-range values are refused with 422 naming the field; in a list the field's location
carries the row's index (`tracks.3.title`), and nothing of the call is written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, create_model

from musicspace_shared.features import FEATURE_RANGES, FEATURES
from musicspace_shared.forget import ForgetReport
from musicspace_shared.ids import TrackId
from musicspace_shared.inputs import StrictBody

# A 2,000-track library is one call; the gateway's 1 MiB body limit is usually reached first
# (about 2,500 library items with their catalog fields): send bigger libraries in parts (merge).
MAX_ITEMS = 5000
RELEASE_DATE = r"^[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?$"


def _text(limit: int, doc: str) -> Any:
    return Field(None, min_length=1, max_length=limit, description=doc)


class TrackFields(StrictBody):
    """A track's catalog values. A field left out keeps the stored value; null clears it."""

    title: str | None = _text(512, "track title")
    artist: str | None = _text(512, "artist name(s), as shown")
    album: str | None = _text(512, "album name")
    album_id: str | None = _text(64, "the album's id at the source (e.g. Spotify)")
    release_date: str | None = Field(
        None,
        pattern=RELEASE_DATE,
        description="album release date: YYYY, YYYY-MM or YYYY-MM-DD",
        examples=["2019-06-14"],
    )
    popularity: int | None = Field(
        None, strict=True, ge=0, le=100, description="0..100 (Spotify's scale)"
    )
    genre: str | None = _text(64, "genre, e.g. pop")
    subgenre: str | None = _text(64, "subgenre, e.g. dance pop")


def _feature(name: str) -> Any:
    low, high = FEATURE_RANGES[name]
    unit = {"tempo": " (BPM)", "loudness": " (dB)"}.get(name, "")
    return (
        float,
        Field(
            strict=True, allow_inf_nan=False, ge=low, le=high, description=f"{low}..{high}{unit}"
        ),
    )


AudioFeatures = create_model(  # type: ignore[call-overload]
    "AudioFeatures",
    __base__=StrictBody,
    __doc__="Measured audio features: all nine. Stored as measured: a prediction (m2 via "
    "enrichment) never overwrites them; they replace predicted ones.",
    **{name: _feature(name) for name in FEATURES},
)


class CatalogTrack(TrackFields):
    track_id: TrackId
    features: AudioFeatures | None = Field(  # type: ignore[valid-type]
        None,
        description="measured features (all nine). Left out or null: the stored features are "
        "kept; a track without any is enriched by m2 (init-models, enrich-all)",
    )


class TracksUpsert(StrictBody):
    tracks: list[CatalogTrack] = Field(
        min_length=1,
        max_length=MAX_ITEMS,
        description=f"1..{MAX_ITEMS} tracks, each track_id once",
    )


class TracksResult(BaseModel):
    received: int
    inserted: int = Field(description="tracks new to the catalog")
    updated: int = Field(description="tracks with at least one value changed")
    unchanged: int = Field(description="tracks already as sent")


class UserPut(StrictBody):
    """A field left out keeps the stored value (null on creation); null clears it."""

    external_ref: str | None = _text(
        128, "the web app's own reference for the user (unique; e.g. an account id)"
    )
    name: str | None = _text(256, "display name")


class UserOut(BaseModel):
    user_id: int
    external_ref: str | None
    name: str | None
    library_size: int = Field(description="tracks in the user's library (PMS)")
    created_at: datetime | None = None
    updated_at: datetime | None = Field(None, description="the user or their library last changed")


class UserPutResult(UserOut):
    outcome: Literal["inserted", "updated", "unchanged"]


class LibraryTrack(TrackFields):
    """A track of the user's library and the playlist it came from. The catalog fields are
    used only to create a track unknown to the catalog (with blank features, which
    enrichment fills); a known track's values are not changed here (POST /api/tracks)."""

    track_id: TrackId
    playlist_id: str | None = _text(128, "the playlist it was imported from (Tidal, Spotify)")
    playlist_name: str | None = _text(256, "that playlist's name")


class LibraryPut(StrictBody):
    mode: Literal["merge", "replace"] = Field(
        description="merge: add these tracks, update their playlist, keep the others; "
        "replace: the library becomes exactly these tracks (others removed)"
    )
    tracks: list[LibraryTrack] = Field(
        max_length=MAX_ITEMS,
        description=f"0..{MAX_ITEMS} tracks, each track_id once (replace with [] empties it)",
    )


class LibraryResult(BaseModel):
    user_id: int
    mode: Literal["merge", "replace"]
    received: int
    inserted: int = Field(description="tracks added to the library")
    updated: int = Field(description="tracks whose playlist changed")
    unchanged: int = Field(description="tracks already in the library as sent")
    removed: int = Field(description="tracks removed (replace only)")
    tracks_created: int = Field(description="tracks new to the catalog, created blank")
    library_size: int = Field(description="tracks in the library now")


RowCounts = Annotated[dict[str, int], Field(description="rows deleted, by table")]


class ErasureResult(BaseModel):
    user_id: int
    existed: bool = Field(description="the user row was there (false on a repeated call)")
    rows: RowCounts
    services: list[ForgetReport] = Field(
        description="what each replica of each service holding per-user state removed"
    )
