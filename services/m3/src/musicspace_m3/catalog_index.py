"""Catalog-side arrays computed once (at startup or per evaluation) and shared by all requests.

Everything here depends only on the tracks, never on a user, so the service builds it at
startup and rebuilds it when the catalog changes; per-request work is then a few gathers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from musicspace_shared.catalog import CatalogLabels, GroupedInputs, TrackFrame, catalog_labels

_TOKEN = re.compile(r"[a-z0-9]+")


def _title_matrix(titles: list[str], artists: list[str]) -> sp.csr_matrix:
    """L2-normalised binary bag of title words (idf-weighted), rows = tracks."""
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, title in enumerate(titles):
        # Sorted: a set's order follows the process' string hash seed, and with it the
        # vocabulary's columns and the float sums over them (the ranker's inputs moved
        # in their last bits from one process to the next).
        for tok in sorted(set(_TOKEN.findall(title.lower()))):
            j = vocab.setdefault(tok, len(vocab))
            rows.append(i)
            cols.append(j)
    n = len(titles)
    data = np.ones(len(rows), dtype=np.float32)
    mat = sp.csr_matrix((data, (rows, cols)), shape=(n, max(len(vocab), 1)), dtype=np.float32)
    df = np.asarray((mat > 0).sum(axis=0)).ravel()
    idf = np.log((1 + n) / (1 + df)).astype(np.float32) + 1.0
    # Words used by one track only cannot link two tracks: drop them to keep the matrix small.
    idf[df < 2] = 0.0
    mat = mat @ sp.diags(idf)
    norms = np.sqrt(np.asarray(mat.multiply(mat).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ mat, dtype=np.float32)


@dataclass
class CatalogIndex(CatalogLabels):
    """Per-track codes, standardised audio features and lookups used by candidates and features."""

    popularity: np.ndarray  # NaN filled with the median
    audio: np.ndarray  # (n, 9) z-scores, NaN filled with the track's subgenre mean
    has_audio: np.ndarray
    titles: sp.csr_matrix
    artist_size: np.ndarray  # tracks per artist, per track
    album_size: np.ndarray
    pop_rank: np.ndarray  # popularity percentile within the subgenre ("a hit of its kind")
    year: np.ndarray  # release year, NaN when unknown
    audio_sq: np.ndarray = field(
        init=False, repr=False
    )  # |audio|^2 per track (distances by dot products)
    pop_term: np.ndarray = field(init=False, repr=False)  # the prescore's popularity term
    pop_term_max: float = field(init=False, repr=False)
    fingerprint: str = ""
    artist_tracks: sp.csr_matrix = field(init=False, repr=False)  # artists x tracks

    def __post_init__(self) -> None:
        n = len(self.frame)
        self.audio_sq = (self.audio.astype(np.float32) ** 2).sum(axis=1)
        self.pop_term = (0.006 * self.popularity).astype(np.float32)
        self.pop_term_max = float(self.pop_term.max(initial=0.0))
        self.artist_tracks = sp.csr_matrix(
            (np.ones(n, dtype=np.float32), (self.artist, np.arange(n))), shape=(self.n_artists, n)
        )

    @cached_property
    def grouped(self) -> GroupedInputs:
        """The candidate scan's per-track inputs in (subgenre, genre) group order."""
        return GroupedInputs.of(self, self.audio, self.audio_sq, self.pop_term)

    def prepare_groups(self) -> None:
        super().prepare_groups()
        self.grouped  # noqa: B018 - a cached property, computed here (travels with the index)


def build_catalog_index(frame: TrackFrame, *, fingerprint: str = "") -> CatalogIndex:
    """Compute the catalog-side arrays for a frame (about a second for 28k tracks)."""
    labels = catalog_labels(frame)
    artist, album, subgenre = labels["artist"], labels["album"], labels["subgenre"]
    pop = frame.popularity.astype(np.float64).copy()
    pop[np.isnan(pop)] = np.nanmedian(pop) if np.isfinite(pop).any() else 0.0
    feats = frame.features.astype(np.float64)
    has = ~np.isnan(feats).any(axis=1)
    mean = np.nanmean(feats, axis=0) if has.any() else np.zeros(feats.shape[1])
    std = np.nanstd(feats, axis=0) if has.any() else np.ones(feats.shape[1])
    std[~np.isfinite(std) | (std == 0)] = 1.0
    mean[~np.isfinite(mean)] = 0.0
    z = (feats - mean) / std
    # A track without features sits at its subgenre's mean (else at the global mean, 0).
    for code in np.unique(subgenre[~has]) if (~has).any() else []:
        members = (subgenre == code) & has
        fill = z[members].mean(axis=0) if members.any() else np.zeros(z.shape[1])
        rows = np.where((subgenre == code) & ~has)[0]
        z[rows] = np.where(np.isnan(z[rows]), fill, z[rows])
    z[np.isnan(z)] = 0.0
    index = CatalogIndex(
        **labels,
        popularity=pop,
        audio=z.astype(np.float32),
        has_audio=has,
        titles=_title_matrix(frame.titles, frame.artists),
        artist_size=np.bincount(artist, minlength=labels["n_artists"])[artist].astype(np.float32),
        album_size=np.bincount(album, minlength=labels["n_albums"])[album].astype(np.float32),
        pop_rank=_rank_within(pop, subgenre, len(labels["subgenre_names"])),
        year=_years(getattr(frame, "release_dates", None), len(frame)),
        fingerprint=fingerprint,
    )
    index.prepare_groups()  # the candidate scan's rows by artist and group, built here once
    return index


def _years(dates: list[str | None] | None, n: int) -> np.ndarray:
    """The year of each release date ("1999", "1999-06-14"); NaN when absent or malformed."""
    out = np.full(n, np.nan, dtype=np.float32)
    if not dates:
        return out
    for i, value in enumerate(dates):
        if value and len(value) >= 4 and value[:4].isdigit():
            out[i] = float(value[:4])
    return out


def _rank_within(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    ranks = np.zeros(len(values), dtype=np.float32)
    for code in range(n_groups):
        members = np.where(groups == code)[0]
        order = np.argsort(np.argsort(values[members], kind="stable"), kind="stable")
        ranks[members] = order / max(len(members) - 1, 1)
    return ranks
