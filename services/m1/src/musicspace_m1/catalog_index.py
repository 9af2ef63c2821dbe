"""Catalog-side arrays, built once per catalog version and shared by every request.

Nothing here depends on a user: per-request work is then a few gathers and one small model
call. The service builds it at startup and rebuilds it when the tracks change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicspace_shared.catalog import TrackFrame


def label_codes(values: list[str]) -> tuple[np.ndarray, int]:
    """Integer codes for labels (case and spaces folded); "" is a label like any other."""
    seen: dict[str, int] = {}
    codes = np.fromiter(
        (seen.setdefault(v.strip().lower(), len(seen)) for v in values),
        dtype=np.int64,
        count=len(values),
    )
    return codes, max(len(seen), 1)


@dataclass
class CatalogIndex:
    """Codes, standardised audio features and popularity per catalog row."""

    frame: TrackFrame
    artist: np.ndarray
    album: np.ndarray
    genre: np.ndarray
    subgenre: np.ndarray
    song: np.ndarray  # same (artist, title) = same song under another id (single vs album)
    n_artists: int
    n_albums: int
    n_genres: int
    n_subgenres: int
    n_songs: int
    audio: np.ndarray  # (n, 9) z-scores; NaN where the track has no features
    audio_sq: np.ndarray  # audio**2, so a distance over the catalog is two mat-vec products
    has_audio: np.ndarray
    popularity: np.ndarray  # 0..1, NaN when unknown
    feature_mean: np.ndarray
    feature_std: np.ndarray
    generation: int = 0  # set by the service per rebuild (part of cache keys)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def track_ids(self) -> list[str]:
        return self.frame.track_ids


def build_catalog_index(frame: TrackFrame) -> CatalogIndex:
    """Precompute everything scoring needs from the tracks alone."""
    artist, n_artists = label_codes(frame.artists)
    album, n_albums = label_codes(
        [f"{a}\x1f{b}" for a, b in zip(frame.artists, frame.albums, strict=True)]
    )
    genre, n_genres = label_codes(frame.genres)
    subgenre, n_subgenres = label_codes(frame.subgenres)
    song, n_songs = label_codes(
        [f"{a}\x1f{t}" for a, t in zip(frame.artists, frame.titles, strict=True)]
    )
    feats = frame.features
    has = ~np.isnan(feats).any(axis=1)
    mean = np.nanmean(feats[has], axis=0) if has.any() else np.zeros(feats.shape[1])
    std = np.nanstd(feats[has], axis=0) if has.any() else np.ones(feats.shape[1])
    std = np.where(std > 1e-9, std, 1.0)
    audio = (feats - mean) / std
    return CatalogIndex(
        frame=frame,
        artist=artist,
        album=album,
        genre=genre,
        subgenre=subgenre,
        song=song,
        n_artists=n_artists,
        n_albums=n_albums,
        n_genres=n_genres,
        n_subgenres=n_subgenres,
        n_songs=n_songs,
        audio=audio,
        audio_sq=audio**2,
        has_audio=has,
        popularity=frame.popularity / 100.0,
        feature_mean=mean,
        feature_std=std,
    )
