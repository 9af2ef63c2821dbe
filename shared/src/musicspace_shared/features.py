"""The nine audio features, in the one order used everywhere."""

from __future__ import annotations

FEATURES: tuple[str, ...] = (
    "danceability",
    "energy",
    "valence",
    "acousticness",
    "instrumentalness",
    "liveness",
    "speechiness",
    "tempo",
    "loudness",
)

# Plausible value ranges, used to clip predictions and validate input.
FEATURE_RANGES: dict[str, tuple[float, float]] = {
    **{name: (0.0, 1.0) for name in FEATURES[:7]},
    "tempo": (0.0, 250.0),
    "loudness": (-60.0, 5.0),
}
