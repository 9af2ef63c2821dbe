"""Keys that each name a few rows (a word's or an artist's spelling variants), kept as one dict
of key -> row and two arrays instead of a Python list or set per key.

At 1M tracks the artist index held 590k sets and the word index 156k lists: about 200 bytes of
heap per key, and pickled one object at a time inside a single C call (issue 18, session 24:
the artist index alone, packed in a thread, stopped an event loop beside it for 447 ms). Here the
dict maps str -> int, which musicspace_shared.packing writes a block at a time, and the rest is
two numpy arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain

import numpy as np


class Postings:
    """For each key, the ints it was given (in the order given)."""

    def __init__(self, lists: Mapping[str, Sequence[int]]) -> None:
        self._row = {key: row for row, key in enumerate(lists)}
        sizes = np.fromiter(map(len, lists.values()), np.int64, len(lists))
        self._starts = np.zeros(len(lists) + 1, np.int64)
        np.cumsum(sizes, out=self._starts[1:])
        self._values = np.fromiter(
            chain.from_iterable(lists.values()), np.int32, int(self._starts[-1])
        )

    def __len__(self) -> int:
        return len(self._row)

    def get(self, key: str) -> list[int]:
        row = self._row.get(key)
        if row is None:
            return []
        return self._values[self._starts[row] : self._starts[row + 1]].tolist()
