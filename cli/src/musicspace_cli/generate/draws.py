"""Random draws addressed by (stream, counter) instead of drawn in sequence.

A value is a function of the seed, a stream (what is drawn: "popularity noise", "library
size", ...) and a counter (whose it is: a track's or a user's index, times a stride, plus the
draw's position). It does not depend on what was drawn before it, so the generator can make
its output in chunks of any size and get the same values: the chunk size changes the memory
used, never the data. The mixing is SplitMix64's (Steele, Lea and Flood, 2014): a value is
mix(key + counter * gamma), a bijection of the counter within a stream.
"""

from __future__ import annotations

import hashlib

import numpy as np
from scipy.special import ndtri

_MASK = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15
_MULTIPLIERS = (0xBF58476D1CE4E5B9, 0x94D049BB133111EB)
ID_ALPHABET = np.frombuffer(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8
)
ID_HALF = 11  # base-62 digits per 64-bit half of an id (62**11 > 2**64)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer on uint64 arrays (wrapping arithmetic; a bijection)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(_MULTIPLIERS[0])
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(_MULTIPLIERS[1])
    return x ^ (x >> np.uint64(31))


class Draws:
    """Uniform, normal, index and id draws of one seed, each addressed by stream and counter."""

    def __init__(self, seed: int) -> None:
        self._seed = seed & _MASK
        self._keys: dict[str, np.uint64] = {}

    def _key(self, stream: str) -> np.uint64:
        key = self._keys.get(stream)
        if key is None:
            digest = hashlib.blake2b(stream.encode(), digest_size=8).digest()
            mixed = _mix(np.array([self._seed ^ int.from_bytes(digest, "little")], np.uint64))
            key = self._keys[stream] = mixed[0]
        return key

    def bits(self, stream: str, counters: np.ndarray) -> np.ndarray:
        """64 random bits per counter (counters: non-negative integers)."""
        x = np.asarray(counters, dtype=np.int64).astype(np.uint64)
        return _mix(x * np.uint64(_GAMMA) + self._key(stream))

    def uniform(self, stream: str, counters: np.ndarray) -> np.ndarray:
        """Uniform in the open interval (0, 1)."""
        top = (self.bits(stream, counters) >> np.uint64(11)).astype(np.float64)
        return (top + 0.5) * 2.0**-53

    def normal(self, stream: str, counters: np.ndarray) -> np.ndarray:
        """Standard normal (the inverse of its distribution function at a uniform)."""
        return ndtri(self.uniform(stream, counters))

    def below(self, stream: str, counters: np.ndarray, bound: np.ndarray | int) -> np.ndarray:
        """An integer in [0, bound), bound >= 1 (per counter, or one for all)."""
        bound = np.asarray(bound, dtype=np.int64)
        drawn = np.floor(self.uniform(stream, counters) * bound).astype(np.int64)
        return np.minimum(drawn, bound - 1)

    def ids(self, stream: str, counters: np.ndarray) -> np.ndarray:
        """22-character base-62 ids, distinct for distinct counters of a stream: the first 11
        characters are a bijection of the counter, the last 11 more random bits."""
        first = self.bits(stream, counters)
        second = _mix(first ^ self._key(stream + " (second half)"))
        digits = np.empty((len(first), 2 * ID_HALF), dtype=np.uint8)
        for half, values in enumerate((first, second)):
            for place in range(ID_HALF - 1, -1, -1):
                digits[:, half * ID_HALF + place] = values % np.uint64(62)
                values = values // np.uint64(62)
        return ID_ALPHABET[digits].view(f"S{2 * ID_HALF}").ravel().astype(f"U{2 * ID_HALF}")
