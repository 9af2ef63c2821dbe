from __future__ import annotations

import random
import string

import numpy as np
import pytest

from musicspace_shared import row_lookup
from musicspace_shared.row_lookup import RowLookup, fixed_width


def test_row_lookup_finds_known_ids_only() -> None:
    lookup = RowLookup(["b2", "a1", "abc"])
    got = lookup.rows(["a1", "abc", "abcd", "ab", "zz", "b2", ""])
    assert got.tolist() == [1, 2, -1, -1, -1, 0, -1]


def test_an_empty_lookup_finds_nothing() -> None:
    assert RowLookup([]).rows(["a", "b"]).tolist() == [-1, -1]
    assert len(RowLookup([])) == 0 and len(RowLookup(["a", "b"])) == 2


def test_ids_that_share_a_key_are_found_by_their_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = ["b2", "a1", "abc", "zz9"]
    # Every id one key: the lookup searches the bytes, and answers the same.
    monkeypatch.setattr(row_lookup, "_keys", lambda v: np.zeros(len(v), dtype=np.uint64))
    lookup = RowLookup(ids)
    assert lookup.keys is None
    assert lookup.rows(["a1", "abc", "abcd", "ab", "zz9", "b2", ""]).tolist() == [
        1,
        2,
        -1,
        -1,
        3,
        0,
        -1,
    ]


def test_a_large_catalog_is_found_row_for_row() -> None:
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits
    ids = list({"".join(rng.choices(alphabet, k=22)) for _ in range(50_000)})
    lookup = RowLookup(ids)
    assert lookup.keys is not None
    asked = [ids[i] for i in rng.sample(range(len(ids)), 5_000)] + ["x" * 22, ids[0][:-1]]
    position = {t: row for row, t in enumerate(ids)}
    assert lookup.rows(asked).tolist() == [position.get(t, -1) for t in asked]
    assert lookup.rows(asked[-2:]).tolist() == [-1, -1]


def test_keys_crowded_into_one_bucket_are_all_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys with the same top bits share a bucket: each is found further along it."""
    ids = [f"id{i}" for i in range(40)]
    # Distinct keys, all below 2**8: one bucket holds them all.
    monkeypatch.setattr(
        row_lookup,
        "_keys",
        lambda v: np.array(
            [int(x[2:] or 0) * 3 + 1 if x[:2] == b"id" else 7 for x in v], np.uint64
        ),
    )
    lookup = RowLookup(ids)
    assert lookup.keys is not None and int(np.diff(lookup.bucket_starts).max()) == len(ids)
    asked = ["id39", "id0", "id17", "nope", "id40", "id2"]
    assert lookup.rows(asked).tolist() == [39, 0, 17, -1, -1, 2]


def test_ids_cut_from_bytes_are_found_as_their_strings() -> None:
    data = np.frombuffer(b"a1 b2 toolongid  abc", dtype=np.uint8)
    starts, ends = np.array([0, 3, 6, 16, 17]), np.array([2, 5, 15, 16, 20])
    lookup = RowLookup(["b2", "a1", "abc", "toolo"])
    ids = fixed_width(data, starts, ends, lookup.width)
    assert lookup.width == 8  # the longest id and a byte more, in whole 8-byte words
    assert ids.tolist() == [b"a1", b"b2", b"toolongi", b"", b"abc"]
    assert lookup.rows(ids).tolist() == [1, 0, -1, -1, 2]
