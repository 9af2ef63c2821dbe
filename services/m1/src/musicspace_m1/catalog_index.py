"""Catalog-side arrays, built once per catalog version and shared by every request.

Nothing here depends on a user: per-request work is then a few gathers and one small model
call. The service builds it at startup and rebuilds it when the tracks change.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from musicspace_shared.catalog import CatalogLabels, TrackFrame, catalog_labels, label_codes


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
    # pass over the catalog.

    @cached_property
    def popularity_or_zero(self) -> np.ndarray:
        return np.nan_to_num(self.popularity, nan=0.0)

    @cached_property
    def popularity_max(self) -> float:
        return float(self.popularity_or_zero.max()) if len(self.popularity) else 0.0

    @cached_property
    def artist_sizes(self) -> np.ndarray:
        """Tracks per artist code."""
        return np.bincount(self.artist, minlength=self.n_artists)

    @cached_property
    def _by_artist(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows in artist order (rows ascending within one), and where each artist starts."""
        order = np.argsort(self.artist, kind="stable")
        return order, np.concatenate([[0], np.cumsum(self.artist_sizes)])

    @cached_property
    def _groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The (subgenre, genre) pairs that have tracks: each one's subgenre and genre, the
        rows in group order (rows ascending within one), and where each group starts."""
        code = self.subgenre.astype(np.int64) * max(self.n_genres, 1) + self.genre
        keys, group = np.unique(code, return_inverse=True)
        order = np.argsort(group, kind="stable")
        sizes = np.bincount(group, minlength=len(keys))
        starts = np.concatenate([[0], np.cumsum(sizes)])
        return keys // max(self.n_genres, 1), keys % max(self.n_genres, 1), order, starts

    @property
    def group_subgenre(self) -> np.ndarray:
        return self._groups[0]

    @property
    def group_genre(self) -> np.ndarray:
        return self._groups[1]

    def rows_of_group(self, group: int) -> np.ndarray:
        _, _, order, starts = self._groups
        return order[starts[group] : starts[group + 1]]

    def rows_of_artists(self, artists: np.ndarray) -> np.ndarray:
        order, starts = self._by_artist
        if not len(artists):
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([order[starts[a] : starts[a + 1]] for a in artists.tolist()])

    def prepare(self) -> CatalogIndex:
        """Build the lookups now (in the rebuild worker: they travel with the index)."""
        for name in ("popularity_max", "artist_sizes", "_by_artist", "_groups"):
            getattr(self, name)
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
