"""A user's taste profile: what they hold (artists, albums, subgenres, genres) and their audio.

The audio part is the mean and spread of the standardised features of the user's tracks that
have features (measured or predicted). Below `min_tracks` such tracks the audio part is the
global average profile (the mean of all trained users' profiles), and the profile says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicspace_m1.catalog_index import CatalogIndex

# Spreads below this (in catalog standard deviations) would make one odd track look far away.
MIN_SPREAD = 0.25


@dataclass
class AudioProfile:
    """Mean and spread of standardised audio features (z-scores, 9 values each)."""

    mean: np.ndarray
    spread: np.ndarray
    tracks: int


NO_AUDIO = AudioProfile(mean=np.zeros(9), spread=np.ones(9), tracks=0)
"""No audio profile of one's own: build_profile then uses the global average one."""


@dataclass
class Profile:
    rows: np.ndarray  # catalog rows the user holds
    audio: AudioProfile
    fallback: bool  # audio part is the global average profile
    held_audio: np.ndarray  # (m, 9) standardised features of the held tracks that have them

    @property
    def tracks(self) -> int:
        return len(self.rows)


def audio_profile(audio: np.ndarray) -> AudioProfile:
    """Mean and spread of standardised features (rows with NaN are ignored)."""
    audio = audio[~np.isnan(audio).any(axis=1)]
    if len(audio) == 0:
        return AudioProfile(mean=np.zeros(audio.shape[1]), spread=np.ones(audio.shape[1]), tracks=0)
    return AudioProfile(
        mean=audio.mean(axis=0), spread=np.maximum(audio.std(axis=0), MIN_SPREAD), tracks=len(audio)
    )


def average_profile(profiles: list[AudioProfile]) -> AudioProfile:
    """The global average profile (what users without enough features are compared with)."""
    if not profiles:
        return AudioProfile(mean=np.zeros(9), spread=np.ones(9), tracks=0)
    return AudioProfile(
        mean=np.mean([p.mean for p in profiles], axis=0),
        spread=np.mean([p.spread for p in profiles], axis=0),
        tracks=0,
    )


def build_profile(
    index: CatalogIndex,
    rows: np.ndarray,
    *,
    global_audio: AudioProfile,
    min_tracks: int,
    own_audio: AudioProfile | None = None,
) -> Profile:
    """The user's profile; the audio part falls back to global_audio below min_tracks with features.

    own_audio overrides the audio profile computed from the catalog rows (the service passes
    the one stored with the user's model, computed from the freshest features).
    """
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    held = index.audio[rows[index.has_audio[rows]]]
    own = own_audio if own_audio is not None else audio_profile(held)
    fallback = own.tracks < min_tracks
    return Profile(
        rows=rows, audio=global_audio if fallback else own, fallback=fallback, held_audio=held
    )


def to_raw_units(index: CatalogIndex, audio: AudioProfile) -> dict[str, dict[str, float]]:
    """Profile means and spreads in the features' own units (for metadata and status)."""
    from musicspace_shared.features import FEATURES

    mean = audio.mean * index.feature_std + index.feature_mean
    spread = audio.spread * index.feature_std
    return {
        "mean": {name: round(float(v), 4) for name, v in zip(FEATURES, mean, strict=True)},
        "spread": {name: round(float(v), 4) for name, v in zip(FEATURES, spread, strict=True)},
    }
