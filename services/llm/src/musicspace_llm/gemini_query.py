"""With Gemini configured, the query is also read by Gemini, into the same intent.

One generateContent call with structured output (a JSON schema) per query, run while the
query is embedded. Its reading is checked against what the catalog and the intent can hold
(known genres, subgenres and moods, feature ranges within bounds, years within reason) and
only fills what the offline reading left empty: a name the sound matching could not read
("방탄소년단" as BTS is read offline too, but "Bangtan Boys" is not), a number phrased in a
way numbers.py does not know, a mood in other words. Any error, timeout or malformed answer
leaves the offline reading alone, so search never waits on Gemini for longer than
LLM_QUERY_TIMEOUT_S and never fails because of it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from musicspace_llm.concepts import FEATURE_WORDS, SUBGENRE_GENRE
from musicspace_shared.features import FEATURE_RANGES

logger = logging.getLogger("musicspace.llm.gemini_query")
MOODS = sorted(f"{feature}:{direction}" for feature, direction in FEATURE_WORDS)
GENRES = sorted(set(SUBGENRE_GENRE.values()))

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "genres": {"type": "array", "items": {"type": "string", "enum": GENRES}},
        "subgenres": {"type": "array", "items": {"type": "string", "enum": sorted(SUBGENRE_GENRE)}},
        "moods": {"type": "array", "items": {"type": "string", "enum": MOODS}},
        "ranges": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "feature": {"type": "string", "enum": sorted(FEATURE_RANGES)},
                    "min": {"type": "number"},
                    "max": {"type": "number"},
                },
                "required": ["feature"],
            },
        },
        "year_min": {"type": "integer"},
        "year_max": {"type": "integer"},
        "artist": {"type": "string"},
        "similar_to_artist": {"type": "string"},
        "title": {"type": "string"},
    },
}


@dataclass
class Reading:
    """Gemini's reading of a query, already checked."""

    genres: list[str] = field(default_factory=list)
    subgenres: list[str] = field(default_factory=list)
    moods: list[str] = field(default_factory=list)  # "energy:high", ...
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    years: tuple[int, int] | None = None
    artist: str | None = None  # as the catalog would spell it (Latin script for "드레이크")
    similar_to: str | None = None
    title: str | None = None


def _prompt(query: str) -> str:
    return (
        "Read this music search query into the JSON schema. genres/subgenres/moods: only the "
        "allowed values the query asks for. ranges: audio-feature bounds the query states "
        "(tempo in BPM, loudness in dB, the other features on 0..1). year_min/year_max: album "
        "release years it asks for (a decade such as '80s' is 1980-1989). artist: the artist "
        "whose songs it asks for, spelled as on Spotify (in Latin script when the query writes "
        "the name in another script). similar_to_artist: the artist after 'like' / '같은' / "
        "'como', when the query asks for music like that artist. title: a song title it names. "
        "Leave out everything the query does not say.\n"
        f"Query: {json.dumps(query, ensure_ascii=False)}"
    )


def check_reading(raw: str) -> Reading | None:
    """The answer as a Reading, keeping only values that make sense; None when unreadable."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    out = Reading(
        genres=[g for g in _strings(data.get("genres")) if g in GENRES],
        subgenres=[s for s in _strings(data.get("subgenres")) if s in SUBGENRE_GENRE],
        moods=[m for m in _strings(data.get("moods")) if m in MOODS],
    )
    for item in data.get("ranges") or []:
        if not isinstance(item, dict) or item.get("feature") not in FEATURE_RANGES:
            continue
        low_bound, high_bound = FEATURE_RANGES[item["feature"]]
        low, high = _number(item.get("min")), _number(item.get("max"))
        if (low is None and high is None) or any(
            v is not None and not low_bound <= v <= high_bound for v in (low, high)
        ):
            continue
        if low is not None and high is not None and low > high:
            continue
        out.ranges[item["feature"]] = (low, high)
    low_year, high_year = _number(data.get("year_min")), _number(data.get("year_max"))
    if low_year is not None or high_year is not None:
        low, high = int(low_year or 1900), int(high_year or 2100)
        if 1900 <= low <= high <= 2100:
            out.years = (low, high)
    for name in ("artist", "similar_to", "title"):
        value = data.get("similar_to_artist" if name == "similar_to" else name)
        if isinstance(value, str) and 0 < len(value.strip()) <= 200:
            setattr(out, name, value.strip())
    return out


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class GeminiQueryReader:
    """Reads one query with generateContent; None on any failure (the offline reading stands)."""

    def __init__(self, *, client, model: str, timeout_s: float) -> None:  # noqa: ANN001 - genai.Client
        self.client = client
        self.model = model
        self.timeout_s = timeout_s

    async def read(self, query: str) -> Reading | None:
        from google.genai import types

        config = types.GenerateContentConfig(
            response_mime_type="application/json",
            response_json_schema=SCHEMA,
            temperature=0.0,
            max_output_tokens=512,
        )
        try:
            response = await asyncio.wait_for(
                self.client.aio.models.generate_content(
                    model=self.model, contents=_prompt(query), config=config
                ),
                timeout=self.timeout_s,
            )
            reading = check_reading(response.text or "")
        except Exception as exc:  # noqa: BLE001 - the offline reading stands
            logger.warning("gemini query reading unavailable", extra={"error": type(exc).__name__})
            return None
        if reading is None:
            logger.warning("gemini query reading unreadable")
        return reading
