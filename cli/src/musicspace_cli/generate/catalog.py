"""The synthetic catalog, made artist by artist in chunks of about `chunk` tracks.

Artist a copies demo artist `template(a)`; its tracks follow those of the artists before it, so
track t's artist and template row are fixed whatever the chunking, and every random value of an
artist, a track or an album is drawn at its own counter (musicspace_cli.generate.draws). What
is kept across chunks is what the users need: each track's subgenre code and popularity (2
bytes a track), and the artist names' hashes for making them unique (16 bytes an artist).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np
import pandas as pd

from musicspace_cli.generate.demo import MAX_NAME_WORDS, Demo, Vocabulary
from musicspace_cli.generate.draws import Draws
from musicspace_shared.features import FEATURE_RANGES, FEATURES

# Noise on the resampled features, as a fraction of each feature's spread in the demo.
FEATURE_NOISE = 0.05
POPULARITY_NOISE = 5.0
# Name hashes waiting in a dict before they join the sorted arrays (bounds the dict's size).
PENDING_NAMES = 1 << 16


class Catalog:
    """Writes the catalog's chunks, keeping per track what the users are drawn from."""

    def __init__(self, demo: Demo, draws: Draws, tracks: int) -> None:
        self.demo, self.draws, self.tracks = demo, draws, tracks
        self.subgenre_codes = np.zeros(tracks, dtype=np.uint8)
        self.popularity = np.zeros(tracks, dtype=np.uint8)
        self.artists = 0
        self.without_features = 0
        self._done = 0
        self._artist_names = UniqueNames()
        low = np.array([FEATURE_RANGES[f][0] for f in FEATURES])
        high = np.array([FEATURE_RANGES[f][1] for f in FEATURES])
        self._feature_range = low, high
        assert len(demo.subgenre_names) <= 256, "subgenre codes are one byte"

    def chunks(self, chunk: int) -> Iterator[pd.DataFrame]:
        """The catalog's rows, whole artists at a time, at least `chunk` tracks a chunk."""
        while self._done < self.tracks:
            yield self._chunk(min(chunk, self.tracks - self._done))

    def _templates(self, first: int, wanted: int) -> np.ndarray:
        """The templates of artists first, first + 1, ... until they have `wanted` tracks."""
        demo = self.demo
        count = int(wanted / demo.artist_count.mean() * 1.2) + 16
        while True:
            artists = np.arange(first, first + count)
            templates = self.draws.below("artist template", artists, len(demo.artist_count))
            covered = np.cumsum(demo.artist_count[templates])
            if covered[-1] >= wanted:
                return templates[: int(np.searchsorted(covered, wanted)) + 1]
            count *= 2

    def _chunk(self, wanted: int) -> pd.DataFrame:
        demo, draws = self.demo, self.draws
        first_artist, first_track = self.artists, self._done
        templates = self._templates(first_artist, wanted)
        counts = demo.artist_count[templates]
        tracks = min(int(counts.sum()), self.tracks - first_track)  # the last artist cut short
        artist_of = np.repeat(np.arange(len(templates)), counts)[:tracks]
        offsets = np.arange(tracks) - (np.cumsum(counts) - counts)[artist_of]
        rows = demo.artist_start[templates][artist_of] + offsets
        track = first_track + np.arange(tracks)

        noise = draws.normal(
            "feature noise", track[:, None] * len(FEATURES) + np.arange(len(FEATURES))
        )
        features = demo.features[rows] + noise * (FEATURE_NOISE * demo.feature_std)
        features = _round_features(np.clip(features, *self._feature_range))
        missing = np.isnan(features).any(axis=1)
        features[missing] = np.nan  # all nine or none
        noise = draws.normal("popularity noise", track) * POPULARITY_NOISE
        popularity = np.clip(np.round(demo.popularity[rows] + noise), 0, 100).astype(np.int64)

        artist_names = self._artist_names(
            names(
                draws,
                "artist name",
                demo.artist_words,
                demo.artist_lengths[templates],
                first_artist + np.arange(len(templates)),
            )
        )
        titles = names(draws, "title", demo.title_words, demo.title_lengths[rows], track)
        # An album per (synthetic artist, template album): a name and an id of its own, drawn
        # at the counter of its first track.
        album_of, _ = pd.factorize(
            artist_of * (demo.album_codes.max() + 1) + demo.album_codes[rows]
        )
        album_first = np.unique(album_of, return_index=True)[1]
        album_names = np.array(
            names(
                draws,
                "album name",
                demo.album_words,
                demo.album_lengths[rows[album_first]],
                track[album_first],
            ),
            dtype=object,
        )
        album_ids = draws.ids("album id", track[album_first])

        table = pd.DataFrame(
            {
                "track_id": draws.ids("track id", track),
                "track_name": titles,
                "track_artist": np.array(artist_names, dtype=object)[artist_of],
                "track_popularity": popularity,
                "track_album_id": album_ids[album_of],
                "track_album_name": album_names[album_of],
                "track_album_release_date": demo.release_dates[rows],
                "genre": demo.genres[rows],
                "subgenre": demo.subgenres[rows],
            }
        )
        for position, name in enumerate(FEATURES):
            table[name] = features[:, position]
        self.subgenre_codes[track] = demo.subgenre_codes[rows]
        self.popularity[track] = popularity
        self.without_features += int(missing.sum())
        self.artists += len(templates)
        self._done += tracks
        return table


def track_ids(draws: Draws, tracks: np.ndarray) -> np.ndarray:
    """The ids of these tracks (the catalog's, drawn again instead of kept)."""
    return draws.ids("track id", tracks)


def names(
    draws: Draws, stream: str, vocabulary: Vocabulary, lengths: np.ndarray, owners: np.ndarray
) -> list[str]:
    """One name per owner, of `lengths` words drawn by frequency at the owner's counters."""
    words, cumulative = vocabulary
    ends = np.cumsum(lengths)
    starts = ends - lengths
    position = np.arange(int(ends[-1]) if len(ends) else 0) - np.repeat(starts, lengths)
    counters = np.repeat(np.asarray(owners) * MAX_NAME_WORDS, lengths) + position
    picks = np.searchsorted(cumulative, draws.uniform(stream, counters), side="right")
    picked = words[np.minimum(picks, len(words) - 1)].tolist()
    return [" ".join(picked[s:e]) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]


class UniqueNames:
    """Names made unique by a numeral on the repeats ("Blue Moon", "Blue Moon II", ...), in the
    order they come, across chunks: a 64-bit hash and a count per distinct name are kept (in
    sorted arrays, the latest in a bounded dict), not the names."""

    def __init__(self) -> None:
        self._hashes = np.empty(0, dtype=np.uint64)
        self._counts = np.empty(0, dtype=np.int64)
        self._pending: dict[int, int] = {}

    def __call__(self, names: list[str]) -> list[str]:
        hashes = [_hash(name) for name in names]
        keys = np.array(hashes, dtype=np.uint64)
        before = np.zeros(len(keys), dtype=np.int64)
        if len(self._hashes):
            where = np.minimum(np.searchsorted(self._hashes, keys), len(self._hashes) - 1)
            found = self._hashes[where] == keys
            before[found] = self._counts[where[found]]
        out = []
        for name, key, seen in zip(names, hashes, before.tolist(), strict=True):
            n = self._pending.get(key, seen) + 1
            unique = name
            if n > 1:  # the next numeral whose name is not taken (a drawn "Blue Moon II")
                unique = f"{name} {_roman(n)}"
                while self._seen(_hash(unique)):
                    n += 1
                    unique = f"{name} {_roman(n)}"
                self._pending[_hash(unique)] = 1
            self._pending[key] = n
            out.append(unique)
        if len(self._pending) >= PENDING_NAMES:
            self._merge()
        return out

    def _seen(self, key: int) -> int:
        if key in self._pending:
            return self._pending[key]
        where = int(np.searchsorted(self._hashes, np.uint64(key)))
        found = where < len(self._hashes) and int(self._hashes[where]) == key
        return int(self._counts[where]) if found else 0

    def _merge(self) -> None:
        keys = np.r_[self._hashes, np.fromiter(self._pending, np.uint64, len(self._pending))]
        counts = np.r_[self._counts, np.fromiter(self._pending.values(), np.int64)]
        order = np.argsort(keys, kind="stable")  # a pending count (the later) wins
        keys, counts = keys[order], counts[order]
        last = np.r_[keys[1:] != keys[:-1], True]
        self._hashes, self._counts = keys[last], counts[last]
        self._pending = {}


def _hash(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


_ROMAN_DIGITS = tuple(
    zip(
        (1000, 900, 500, 400, 100, 90, 50, 40, 10, 9, 5, 4, 1),
        ("M", "CM", "D", "CD", "C", "XC", "L", "XL", "X", "IX", "V", "IV", "I"),
        strict=True,
    )
)


def _roman(n: int) -> str:
    out = ""
    for value, letters in _ROMAN_DIGITS:
        while n >= value:
            out, n = out + letters, n - value
    return out


def _round_features(values: np.ndarray) -> np.ndarray:
    """The catalog's precision: 3 significant digits, tempo and loudness 3 decimals."""
    out = values.copy()
    unit = out[:, :7]
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = 10.0 ** (2 - np.floor(np.log10(np.abs(unit))))
    scale[~np.isfinite(scale)] = 1.0
    out[:, :7] = np.round(unit * scale) / scale
    out[:, 7:] = np.round(out[:, 7:], 3)
    return out
