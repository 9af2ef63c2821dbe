"""The demo data, as the arrays the generator samples from."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicspace_cli.demo_data import DEMO_CATALOG, DEMO_PLAYLISTS
from musicspace_shared.features import FEATURES

MAX_NAME_WORDS = 8

Vocabulary = tuple[np.ndarray, np.ndarray]
"""Words and their cumulative frequencies."""


class Demo:
    """The demo catalog sorted by artist (an artist's tracks in a row), and the playlists'
    sizes and subgenre mixes; subgenres as codes into `subgenre_names`."""

    def __init__(self, catalog: Path = DEMO_CATALOG, playlists: Path = DEMO_PLAYLISTS) -> None:
        frame = pd.read_csv(catalog, dtype={"track_album_release_date": str}, keep_default_na=True)
        frame = frame.sort_values(["track_artist", "track_id"], kind="stable").reset_index(
            drop=True
        )
        self.frame = frame
        artists = frame["track_artist"].fillna("").to_numpy()
        self.artist_start = np.flatnonzero(np.r_[True, artists[1:] != artists[:-1]])
        self.artist_count = np.diff(np.r_[self.artist_start, len(frame)])
        self.features = frame[list(FEATURES)].to_numpy(dtype=np.float64)
        self.feature_std = np.nanstd(self.features, axis=0)
        self.popularity = frame["track_popularity"].fillna(0).to_numpy()
        self.release_dates = frame["track_album_release_date"].fillna("").to_numpy()
        self.genres = frame["genre"].fillna("").to_numpy()
        self.subgenres = frame["subgenre"].fillna("").to_numpy()
        self.album_codes = pd.factorize(frame["track_album_id"].astype(str))[0].astype(np.int64)
        self.title_words = _vocabulary(frame["track_name"])
        self.artist_words = _vocabulary(frame["track_artist"])
        self.album_words = _vocabulary(frame["track_album_name"])
        self.title_lengths = _word_counts(frame["track_name"])
        self.artist_lengths = _word_counts(artists)
        self.album_lengths = _word_counts(frame["track_album_name"])

        lists = pd.read_csv(playlists, usecols=["playlist_id", "track_id"])
        sub_of = dict(zip(frame["track_id"], self.subgenres, strict=True))
        lists["subgenre"] = lists["track_id"].map(sub_of).fillna("")
        self.subgenre_names = np.unique(np.r_[self.subgenres, lists["subgenre"].to_numpy()])
        self.subgenre_codes = np.searchsorted(self.subgenre_names, self.subgenres)
        # Each playlist's subgenre mix (codes, with repeats), the playlists one after another.
        lists = lists.sort_values("playlist_id", kind="stable")
        self.playlist_sizes = lists.groupby("playlist_id").size().to_numpy()
        self.mix_codes = np.searchsorted(self.subgenre_names, lists["subgenre"].to_numpy())
        self.mix_starts = np.cumsum(self.playlist_sizes) - self.playlist_sizes


_BRACKETS = str.maketrans("", "", '()[]{}"')


def _words(text: Any) -> list[str]:
    """The words of a name, without brackets and quotes (a drawn word stands alone)."""
    return text.translate(_BRACKETS).split() if isinstance(text, str) else []


def _vocabulary(texts: Iterable[Any]) -> Vocabulary:
    counts: dict[str, int] = {}
    for text in texts:
        for word in _words(text):
            counts[word] = counts.get(word, 0) + 1
    words = np.array(sorted(counts), dtype=object)
    weights = np.array([counts[w] for w in words], dtype=np.float64)
    return words, np.cumsum(weights) / weights.sum()


def _word_counts(texts: Iterable[Any]) -> np.ndarray:
    return np.array([max(1, min(len(_words(t)), MAX_NAME_WORDS)) for t in texts], dtype=np.int64)
