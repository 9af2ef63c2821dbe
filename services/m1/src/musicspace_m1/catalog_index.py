"""Catalog-side arrays, built once per catalog version and shared by every request.

Nothing here depends on a user: per-request work is then a few gathers and one small model
call. The service builds it at startup and rebuilds it when the tracks change.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from musicspace_shared.catalog import (
    CatalogLabels,
    GroupedInputs,
    TrackFrame,
    catalog_labels,
    label_codes,
)


@dataclass
class CatalogIndex(CatalogLabels):
    """Codes, standardised audio features and popularity per catalog row."""

    song: np.ndarray  # same (artist, title) = same song under another id (single vs album)
    n_songs: int
    audio: np.ndarray  # (n, 9) z-scores; NaN where the track has no features
    audio_sq: np.ndarray  # audio**2, so a distance over the catalog is two mat-vec products
    has_audio: np.ndarray
    popularity: np.ndarray  # 0..1, NaN when unknown
    feature_mean: np.ndarray
    feature_std: np.ndarray
    generation: int = 0  # set by the service per rebuild (part of cache keys)
    # The DB's (count, latest updated_at) it was built from: the same on every replica, so a
    # recommend cursor one replica issued is valid on the others.
    catalog_version: Any = None

    # Lookups of the candidate stage (musicspace_m1.hybrid.candidates), built with the index
    # (prepare()) so a request reads a user's artists and (subgenre, genre) groups without a
    # pass over the catalog (the row lists: CatalogLabels).

    @cached_property
    def popularity_or_zero(self) -> np.ndarray:
        return np.nan_to_num(self.popularity, nan=0.0)

    @cached_property
    def popularity_max(self) -> float:
        return float(self.popularity_or_zero.max()) if len(self.popularity) else 0.0

    @cached_property
    def grouped(self) -> GroupedInputs:
        """The candidate scan's per-track inputs in (subgenre, genre) group order."""
        return GroupedInputs.of(self, self.audio, self.audio_sq, self.popularity_or_zero)

    def prepare(self) -> CatalogIndex:
        """Build the lookups now (in the rebuild worker: they travel with the index)."""
        self.popularity_max  # noqa: B018 - a cached property, computed here
        self.prepare_groups()
        self.grouped  # noqa: B018 - idem
        return self


def build_catalog_index(frame: TrackFrame) -> CatalogIndex:
    """Precompute everything scoring needs from the tracks alone."""
    song, songs = label_codes(
        [f"{a}\x1f{t}" for a, t in zip(frame.artists, frame.titles, strict=True)]
    )
    feats = frame.features
    has = ~np.isnan(feats).any(axis=1)
    mean = np.nanmean(feats[has], axis=0) if has.any() else np.zeros(feats.shape[1])
    std = np.nanstd(feats[has], axis=0) if has.any() else np.ones(feats.shape[1])
    std = np.where(std > 1e-9, std, 1.0)
    audio = (feats - mean) / std
    index = CatalogIndex(
        **catalog_labels(frame),
        song=song,
        n_songs=max(len(songs), 1),
        audio=audio,
        audio_sq=audio**2,
        has_audio=has,
        popularity=frame.popularity / 100.0,
        feature_mean=mean,
        feature_std=std,
    )
    return index.prepare()
