"""The search and recommend answers as JSON bytes (orjson), built from plain dicts.

The fields are schemas.SearchResponse's / RecommendResponse's (the routes keep them as their
response_model for the OpenAPI document), but no pydantic model is built, validated and dumped
per answer: that cost more CPU than composing the reasons (test_render.py checks that every
body validates against the schema and equals what the models give).
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from musicspace_llm.index import TrackIndex
from musicspace_llm.service import Result
from musicspace_shared.features import FEATURES

SHOWN_ROWS = 50_000  # about 25 MB of answer fields at most per snapshot


def _features(values: Any) -> dict[str, float]:
    return {
        name: round(float(v), 4)
        for name, v in zip(FEATURES, values.tolist(), strict=True)
        if not math.isnan(v)
    }


def items(result: Result) -> list[dict[str, Any]]:
    return [
        {
            **_track_fields(result.index, match.row),
            "score": round(float(score), 4),
            "reason": reason,
            "matched": list(match.matched),
            "closest": bool(match.closest),
        }
        for match, reason, score in zip(
            result.matches, result.reasons, result.unit_scores(), strict=True
        )
    ]


def _track_fields(index: TrackIndex, row: int) -> dict[str, Any]:
    """A track's own fields in an answer, kept per index snapshot (up to SHOWN_ROWS tracks):
    the same popular tracks come back query after query, and building their fields cost a
    tenth of a search's interpreter time."""
    found = index.shown.get(row)
    if found is None:
        frame = index.frame
        found = {
            "track_id": frame.track_ids[row],
            "title": frame.titles[row] or None,
            "artist": frame.artists[row] or None,
            "album": frame.albums[row] or None,
            "genre": frame.genres[row] or None,
            "subgenre": frame.subgenres[row] or None,
            "audio_features": _features(frame.features[row]),
        }
        if len(index.shown) < SHOWN_ROWS:
            index.shown[row] = found
    return found


def _range(low: float | None, high: float | None) -> dict[str, float | None]:
    return {
        "min": None if low is None else float(low),
        "max": None if high is None else float(high),
    }


def intent(result: Result) -> dict[str, Any]:
    i = result.intent

    def weights(d: dict[Any, float]) -> dict[str, float]:
        return {str(k): round(float(v), 3) for k, v in d.items()}

    return {
        "subgenres": weights(i.subgenres),
        "genres": weights(i.genres),
        "features": weights(i.features),
        "eras": weights(i.eras),
        "ranges": {name: _range(low, high) for name, (low, high) in i.ranges.items()},
        "years": _range(*i.years) if i.years else None,
        "artist": i.artist,
        "similar_to": i.similar_to,
        "named": i.named or None,
        "parser": i.parser,
    }


def body(result: Result, **fields: Any) -> bytes:
    """The answer: `fields` (query, provider, model; recommend's own) plus intent and items."""
    return orjson.dumps({**fields, "intent": intent(result), "items": items(result)})
