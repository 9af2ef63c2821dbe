"""Rows of ids in a fixed list, many at a time, in C: what m3 maps its users' tracks with and
m2's rebuild worker finds a track's row in its last build with (no dict of a million str keys,
whose objects pinned half a GB of the worker's heap after each build)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_MIX = np.uint64(0x9E3779B97F4A7C15)  # an odd 64-bit constant (the golden ratio's)


class RowLookup:
    """Catalog rows of track ids, a page at a time in C. The ids are kept as ASCII bytes (as
    TRACK_ID_PATTERN makes them) with a 64-bit key each, sorted by key: a lookup is a binary
    search over integers, then one comparison of the bytes found with the bytes asked for.
    Searching the bytes themselves cost 1.2 us an id at 1M tracks (20 of the 86 s m3 took to
    read 16.8M activity rows, issue 18). Should two catalog ids share a key, the ids are
    searched as bytes instead.

    The sorted keys are cut into buckets by their top bits (about two buckets a key, so a
    bucket holds one or two): a key is looked for in its own bucket, a step or two, where a
    binary search over 1M keys took twenty (16.8M lookups at 1M tracks: 1.0 s, 3.7 s with
    np.searchsorted, a page of 50k lookups at a time)."""

    def __init__(self, track_ids: Sequence[str]) -> None:
        # As wide as the longest id and one more byte (a longer id asked for is cut to a
        # string no catalog id equals), rounded up to whole 8-byte words: compared as such.
        longest = max((len(t) for t in track_ids), default=0)
        self.dtype = f"S{-(-(longest + 1) // 8) * 8}"
        ids = np.array(track_ids, dtype=self.dtype)
        keys = _keys(ids)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        if np.any(sorted_keys[1:] == sorted_keys[:-1]):
            order = np.argsort(ids, kind="stable")
            self.keys: np.ndarray | None = None
        else:
            self.keys = sorted_keys
            bits = max(len(sorted_keys) - 1, 1).bit_length() + 1
            self.shift = np.uint64(64 - bits)
            sizes = np.bincount((sorted_keys >> self.shift).astype(np.int64), minlength=1 << bits)
            self.bucket_starts = np.zeros(len(sizes) + 1, dtype=np.int64)
            np.cumsum(sizes, out=self.bucket_starts[1:])
        self.order = order
        self.sorted = ids[order]

    def __len__(self) -> int:
        return len(self.sorted)

    @property
    def width(self) -> int:
        """The bytes each id is compared in (`rows` takes ids already that wide, as is)."""
        return int(self.sorted.dtype.itemsize)

    def rows(self, track_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """The row of each id (str, or bytes as fixed_width cuts them); -1 for an id the
        catalog does not hold."""
        if not len(self.sorted):
            return np.full(len(track_ids), -1, dtype=np.int64)
        wanted = np.asarray(track_ids, dtype=self.dtype)
        if self.keys is not None:
            at = self._positions(_keys(wanted))
        else:
            at = np.searchsorted(self.sorted, wanted)
        at = np.minimum(at, len(self.sorted) - 1)
        same = (_words(self.sorted[at]) == _words(wanted)).all(axis=1)
        return np.where(same, self.order[at], -1).astype(np.int64)

    def _positions(self, keys: np.ndarray) -> np.ndarray:
        """Where each key is among the sorted keys (when it is there; else any position)."""
        assert self.keys is not None
        bucket = (keys >> self.shift).astype(np.int64)
        start, end = self.bucket_starts[bucket], self.bucket_starts[bucket + 1]
        found = np.minimum(start, len(self.keys) - 1)
        pending = np.flatnonzero(start < end)
        at = start[pending]
        while len(pending):
            hit = self.keys[at] == keys[pending]
            found[pending[hit]] = at[hit]
            onward = ~hit & (at + 1 < end[pending])
            pending, at = pending[onward], at[onward] + 1
        return found


def _words(ids: np.ndarray) -> np.ndarray:
    """Fixed-width ids (a whole number of 8-byte words wide) as one row of words each, compared
    word by word (numpy compares bytes strings a byte at a time: 1.7 s for 16.8M at 1M tracks)."""
    width = ids.dtype.itemsize
    return np.ascontiguousarray(ids).view(np.uint64).reshape(len(ids), width // 8)


def _keys(ids: np.ndarray) -> np.ndarray:
    """A 64-bit key of each fixed-width bytes value (a whole number of 8-byte words wide, as
    RowLookup keeps them; its words mixed by multiplication: equal values, equal keys;
    different ones rarely equal)."""
    lanes = _words(ids)
    key = np.zeros(len(ids), dtype=np.uint64)
    for word in range(lanes.shape[1]):
        key = (key ^ lanes[:, word]) * _MIX
        key ^= key >> np.uint64(29)
    return key


def byte_spans(starts: np.ndarray, ends: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The positions of the first `width` bytes of each span [starts[i], ends[i]) (n x width)
    and which of them lie inside it (a page of spans at a time: 8 bytes per position)."""
    positions = starts[:, None] + np.arange(width)
    return positions, positions < ends[:, None]


def fixed_width(data: np.ndarray, starts: np.ndarray, ends: np.ndarray, width: int) -> np.ndarray:
    """The byte strings data[starts[i]:ends[i]] of a uint8 array as one fixed-width bytes array
    (longer ones cut to `width`), in one gather: no Python object per string (byte column by
    byte column, 4.6 s of m3's start at 1M tracks)."""
    width = max(width, 1)
    positions, inside = byte_spans(starts, ends, width)
    padded = np.append(data, np.uint8(0))  # positions past the data read a zero
    out = np.where(inside, padded[np.minimum(positions, len(data))], np.uint8(0))
    return np.ascontiguousarray(out, dtype=np.uint8).view(f"S{width}").ravel()
