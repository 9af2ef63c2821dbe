from __future__ import annotations

from musicspace_shared.row_lookup import RowLookup


def test_row_lookup_finds_known_ids_only() -> None:
    lookup = RowLookup(["b2", "a1", "abc"])
    got = lookup.rows(["a1", "abc", "abcd", "ab", "zz", "b2", ""])
    assert got.tolist() == [1, 2, -1, -1, -1, 0, -1]


def test_an_empty_lookup_finds_nothing() -> None:
    assert RowLookup([]).rows(["a", "b"]).tolist() == [-1, -1]
    assert len(RowLookup([])) == 0 and len(RowLookup(["a", "b"])) == 2
