from __future__ import annotations

from musicspace_llm.postings import Postings
from musicspace_shared.packing import pack, unpack


def test_each_key_gives_back_its_ints_in_order() -> None:
    postings = Postings({"drk": [4, 1, 9], "kn": [2], "empty": []})
    assert len(postings) == 3
    assert postings.get("drk") == [4, 1, 9]
    assert postings.get("kn") == [2]
    assert postings.get("empty") == []
    assert postings.get("missing") == []


def test_postings_survive_packing() -> None:
    lists = {f"key{i}": list(range(i % 5)) for i in range(5000)}
    loaded = unpack(pack(Postings(lists)))
    assert all(loaded.get(key) == ints for key, ints in lists.items())
