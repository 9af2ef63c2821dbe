import pickle

import numpy as np
import pytest

from musicspace_shared.packing import BLOCK, pack, unpack


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
