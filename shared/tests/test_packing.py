import pickle
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from musicspace_shared.packing import BLOCK, PackedFile, pack, unpack


def test_long_string_lists_and_indexes_round_trip():
    ids = [f"id-{i}" for i in range(BLOCK * 2 + 3)]
    value = {
        "ids": ids,
        "titles": ["Café", "", None, "한국어"] * 3000,
        "index": {t: i for i, t in enumerate(ids)},
        "array": np.arange(10.0),
    }
    out = unpack(pack(value))
    assert out["ids"] == ids
    assert out["titles"] == value["titles"]
    assert out["index"] == value["index"]
    assert np.array_equal(out["array"], value["array"])


@pytest.mark.parametrize(
    "odd",
    [["a\x00b"] * 3000, ["\x01"] * 3000, [b"x"] * 3000, {i: i for i in range(3000)}],
)
def test_what_cannot_be_packed_is_pickled_as_usual(odd):
    assert unpack(pack(odd)) == odd


def test_packing_splits_strings_into_blocks():
    ids = [f"id-{i}" for i in range(BLOCK * 3)]
    assert len(pack(ids)) < len(pickle.dumps(ids, protocol=5))
    assert unpack(pack(ids)) == ids


def test_a_packed_file_keeps_the_last_object_off_the_heap(tmp_path):
    kept = PackedFile(tmp_path / "kept.bin")
    assert not kept and kept.get() is None
    first = {"ids": [f"id-{i}" for i in range(BLOCK + 1)], "matrix": np.arange(12.0).reshape(3, 4)}
    kept.put(first)
    assert kept
    for _ in range(2):  # read again from the start each time
        out = kept.get()
        assert out["ids"] == first["ids"] and np.array_equal(out["matrix"], first["matrix"])
    assert out is not kept.get()  # a copy per call: the process holds no reference
    kept.put(["second"])
    assert kept.get() == ["second"]
    assert PackedFile(tmp_path / "kept.bin").get() == ["second"]  # another process' view
    kept.clear()
    assert not kept and kept.get() is None
    assert list(tmp_path.iterdir()) == []  # nothing left in the directory


def test_a_failed_put_keeps_what_was_kept(tmp_path):
    kept = PackedFile(tmp_path / "kept.bin")
    kept.put([1, 2, 3])
    with pytest.raises((pickle.PicklingError, TypeError, AttributeError)):
        kept.put(lambda: None)
    assert kept.get() == [1, 2, 3]
    assert [path.name for path in tmp_path.iterdir()] == ["kept.bin"]  # no partial file left


def test_a_list_of_few_distinct_strings_loads_as_shared_objects():
    genres = [f"genre {i % 6}" for i in range(BLOCK * 3 + 7)]
    dates = [None if i % 5 == 0 else f"{1960 + i % 60}" for i in range(BLOCK * 2)]
    out = unpack(pack({"genres": genres, "dates": dates, "again": genres}))
    assert out["genres"] == genres and out["dates"] == dates
    assert out["again"] is out["genres"]  # the same list stays one list
    assert len({id(g) for g in out["genres"]}) == 6
    assert len({id(d) for d in out["dates"] if d is not None}) == len(set(dates) - {None})
    many = [f"title {i}" for i in range(BLOCK)]  # mostly distinct: packed as text blocks
    assert unpack(pack(many)) == many


@pytest.mark.parametrize("zone", [None, UTC])
def test_a_long_list_of_datetimes_round_trips_as_one_array(zone):
    start = datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=zone)
    times = [None if i % 7 == 3 else start + timedelta(seconds=i) for i in range(BLOCK * 2 + 1)]
    out = unpack(pack({"times": times, "again": times}))
    assert out["times"] == times
    assert {t.tzinfo for t in out["times"] if t is not None} == {zone}
    assert out["again"] is out["times"]
    assert len(pack(times)) < len(pickle.dumps(times, protocol=5)) / 2  # an int64 a row


@pytest.mark.parametrize(
    "odd",
    [
        [datetime(2024, 1, 1)] * 3000 + [datetime(2024, 1, 1, tzinfo=UTC)],
        [datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=2)))] * 3000,
        [datetime(2024, 1, 1)] * 3000 + ["2024-01-01"],
        ["a"] * BLOCK + [b"x"],  # the odd one in a later block
        ["a"] * BLOCK + [None, "\x01"],  # the None stand-in beside a None
        ["genre"] * (BLOCK * 2) + [["not hashable"]],
    ],
)
def test_lists_odd_past_their_first_block_are_pickled_as_usual(odd):
    assert unpack(pack(odd)) == odd


def test_strings_that_are_not_valid_utf8_round_trip():
    lone = ["\ud800 half a pair", "fine"] * 3000
    assert unpack(pack(lone)) == lone
