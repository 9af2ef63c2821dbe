"""Why each track was returned: composed from matched attributes, or written by Gemini.

Gemini only ever sees the track's real attributes (the prompt lists them) and its answer is
checked: one short reason per listed track, no subgenre named that the track does not have,
no track that was not asked about. Anything missing or rejected falls back to the composed
reason, so every item always has a truthful one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from typing import Any

from musicspace_llm.concepts import SUBGENRE_GENRE
from musicspace_llm.index import TrackIndex
from musicspace_llm.search import Match
from musicspace_llm.understanding import QueryIntent
from musicspace_shared.features import FEATURES

logger = logging.getLogger("musicspace.llm.reasons")
MAX_REASON_CHARS = 240
_FEATURE_POS = {name: i for i, name in enumerate(FEATURES)}


def _value(index: TrackIndex, row: int, name: str) -> str:
    raw = index.frame.features[row, _FEATURE_POS[name]]
    if name == "tempo":
        return f"{raw:.0f} BPM"
    return f"{raw:.1f} dB" if name == "loudness" else f"{raw:.2f}"


def _attribute(index: TrackIndex, row: int, key: str, intent: QueryIntent) -> str:
    """One matched part of the query, in words, with the track's own value."""
    kind, _, value = key.partition(":")
    if kind == "subgenre":
        return f"{value} ({index.frame.genres[row]})"
    if kind == "genre":
        return value
    if kind == "era":
        return f"{value}s"
    if kind == "feature":
        name, direction = value.split(":")
        return f"{direction} {name} {_value(index, row, name)}"
    if kind == "artist":
        spelled = [h for h, artist in intent.hangul.items() if artist == value]
        return f"by {value}" + (f" ('{spelled[0]}')" if spelled else "")
    if kind == "title":
        return f"title '{value}'"
    if kind == "name":
        return f"title, artist or album partly match '{value}'"
    if kind == "similar":
        shared = index.frame.subgenres[row] in intent.similar_subgenres
        return f"like {value}" + (f": {index.frame.subgenres[row]} too" if shared else "'s sound")
    if kind == "range":
        said = intent.said.get(value)
        return f"{value} {_value(index, row, value)}" + (f" ('{said}')" if said else "")
    if kind == "years":
        year = int(index.years[row])
        return f"released {year}" + (
            f" ('{intent.said['year']}')" if intent.said.get("year") else ""
        )
    return key


def compose_reason(
    index: TrackIndex, match: Match, intent: QueryIntent, *, profile_note: str | None = None
) -> str:
    """Offline reason: the parts of the query this track really matches, in plain words.

    A track that matches nothing is said to be only the closest: to what the query named
    when nothing in the catalog has it, or to the query's filters when too few tracks pass.
    """
    row = match.row
    parts = []
    for key in match.matched:
        asked = intent.matched.get(key)
        attribute = _attribute(index, row, key, intent)
        parts.append(
            f"{attribute} ('{asked}')"
            if asked and asked.lower() not in attribute.lower()
            else attribute
        )
    if match.closest:
        style = f"{index.frame.subgenres[row] or 'unknown style'} by {index.frame.artists[row] or 'unknown artist'}"
        missing = _missing(index, row, intent)
        if missing:
            parts.insert(0, f"closest match, outside {missing}")
        elif intent.named and not parts:
            parts.append(f"nothing matched '{intent.named}'; closest by description: {style}")
        elif not parts:
            parts.append(f"nothing matched your query; closest by description: {style}")
    if profile_note:
        parts.append(profile_note)
    text = "; ".join(parts)
    return text[: MAX_REASON_CHARS - 1] + "…" if len(text) > MAX_REASON_CHARS else text


def _missing(index: TrackIndex, row: int, intent: QueryIntent) -> str:
    """The query's filters this track fails, with its own values ("" when it passes them all)."""
    out = []
    for name, (low, high) in intent.ranges.items():
        raw = index.frame.features[row, _FEATURE_POS[name]]
        if math.isnan(raw) or (low is not None and raw < low) or (high is not None and raw > high):
            shown = "unknown" if math.isnan(raw) else _value(index, row, name)
            out.append(f"'{intent.said.get(name, name)}' ({name} {shown})")
    if intent.years is not None:
        year = int(index.years[row])
        if not intent.years[0] <= year <= intent.years[1]:
            out.append(
                f"'{intent.said.get('year', 'the years asked')}' (released {year or 'unknown'})"
            )
    return ", ".join(out)


def track_facts(index: TrackIndex, row: int) -> dict[str, Any]:
    """The attributes Gemini may ground a reason in (and nothing else)."""
    features = {
        name: round(float(index.frame.features[row, j]), 3)
        for j, name in enumerate(FEATURES)
        if not math.isnan(index.frame.features[row, j])
    }
    return {
        "track_id": index.frame.track_ids[row],
        "title": index.frame.titles[row],
        "artist": index.frame.artists[row],
        "album": index.frame.albums[row],
        "genre": index.frame.genres[row],
        "subgenre": index.frame.subgenres[row],
        "decade": int(index.decades[row]) or None,
        "audio_features": features,
    }


def _prompt(query: str, facts: list[dict[str, Any]]) -> str:
    return (
        "You explain music search results. For each track below write one short reason (max 200 "
        "characters, in the language of the query) why it fits the query. Use ONLY the attributes "
        "given for that track (genre, subgenre, decade, audio features on 0..1 scales, tempo in BPM); "
        "do not invent facts about the artist or the song.\n"
        f"Query: {json.dumps(query, ensure_ascii=False)}\n"
        f"Tracks: {json.dumps(facts, ensure_ascii=False)}\n"
        'Answer as JSON: {"reasons": [{"track_id": "...", "reason": "..."}]}'
    )


def check_reasons(raw: str, facts: list[dict[str, Any]]) -> dict[str, str]:
    """track_id -> reason for the answers that pass the checks; the rest are dropped."""
    try:
        items = json.loads(raw).get("reasons", [])
    except (ValueError, AttributeError):
        return {}
    by_id = {f["track_id"]: f for f in facts}
    accepted: dict[str, str] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        track_id, reason = item.get("track_id"), item.get("reason")
        if track_id not in by_id or not isinstance(reason, str) or not reason.strip():
            continue
        reason = " ".join(reason.split())
        if len(reason) > MAX_REASON_CHARS:
            continue
        # Grounding: a subgenre other than the track's own must not be claimed.
        own = by_id[track_id]["subgenre"]
        lowered = reason.lower()
        if any(
            name in lowered
            for name in SUBGENRE_GENRE
            if name != own and name not in own and len(name) > 4
        ):
            continue
        accepted[track_id] = reason
    return accepted


class GeminiReasons:
    """Reasons for one result page in a single generateContent call."""

    def __init__(self, *, client, model: str, timeout_s: float) -> None:  # noqa: ANN001 - genai.Client
        self.client = client
        self.model = model
        self.timeout_s = timeout_s

    async def write(self, query: str, facts: list[dict[str, Any]]) -> dict[str, str]:
        from google.genai import types

        config = types.GenerateContentConfig(
            response_mime_type="application/json", temperature=0.2, max_output_tokens=2048
        )
        try:
            response = await asyncio.wait_for(
                self.client.aio.models.generate_content(
                    model=self.model, contents=_prompt(query, facts), config=config
                ),
                timeout=self.timeout_s,
            )
            return check_reasons(response.text or "", facts)
        except Exception as exc:  # noqa: BLE001 - reasons degrade to the composed ones
            logger.warning("gemini reasons unavailable", extra={"error": type(exc).__name__})
            return {}
