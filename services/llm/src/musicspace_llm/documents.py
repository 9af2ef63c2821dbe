"""A track as a search document: its names plus words for its genre and audio features.

The words are in English and Korean so a Korean query lands near the same documents as its
English twin. The same text is hashed into the Chroma metadata, so a sync only re-embeds
tracks whose document actually changed.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from musicspace_llm.concepts import GENRE_KO
from musicspace_shared.features import FEATURES

# (feature index, threshold test, English word, Korean word); thresholds sit where the catalog's
# distribution thins out, so a word marks a track that clearly has the quality.
_WORD_RULES: tuple[tuple[str, str, float, str, str], ...] = (
    ("energy", ">=", 0.8, "energetic", "신나는"),
    ("energy", "<=", 0.4, "calm mellow", "잔잔한"),
    ("valence", ">=", 0.7, "happy upbeat", "밝은"),
    ("valence", "<=", 0.3, "sad melancholic", "슬픈"),
    ("danceability", ">=", 0.75, "danceable groovy", "춤추기 좋은"),
    ("acousticness", ">=", 0.6, "acoustic", "어쿠스틱"),
    ("instrumentalness", ">=", 0.5, "instrumental", "연주곡"),
    ("liveness", ">=", 0.6, "live recording", "라이브"),
    ("speechiness", ">=", 0.3, "spoken rap vocals", "랩"),
    ("tempo", ">=", 140.0, "fast tempo", "빠른 템포"),
    ("tempo", "<=", 85.0, "slow tempo", "느린 템포"),
)
_FEATURE_POS = {name: i for i, name in enumerate(FEATURES)}


def feature_words(features: Sequence[float]) -> list[tuple[str, str]]:
    """(English, Korean) words for the qualities a track clearly has; none when features are missing."""
    words = []
    for name, op, threshold, english, korean in _WORD_RULES:
        value = features[_FEATURE_POS[name]]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if (op == ">=" and value >= threshold) or (op == "<=" and value <= threshold):
            words.append((english, korean))
    return words


def decade(release_date: str | None) -> int | None:
    """1975-06-01 -> 1970; None when the date is missing or unreadable."""
    if not release_date or len(release_date) < 4 or not release_date[:4].isdigit():
        return None
    year = int(release_date[:4])
    return year - year % 10 if 1900 <= year <= 2100 else None


def track_document(
    *,
    title: str,
    artist: str,
    album: str,
    genre: str,
    subgenre: str,
    features: Sequence[float],
    year: int | None,
) -> str:
    """The text embedded for one track."""
    parts = [f"{title} by {artist}".strip()]
    if album and album != title:
        parts.append(f"album {album}")
    if genre or subgenre:
        parts.append(
            f"{subgenre} {genre} music ({GENRE_KO.get(genre, '')} {subgenre})".replace("( ", "(")
        )
    if year:
        parts.append(f"{year}s ({year % 100:02d}년대)")
    words = feature_words(features)
    if words:
        parts.append(", ".join(en for en, _ in words) + " / " + ", ".join(ko for _, ko in words))
    return ". ".join(part for part in parts if part)


def document_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]
