import json
import logging

import pytest

from musicspace_shared import saved_state
from musicspace_shared.packing import BLOCK, FORMAT


def test_a_state_saved_and_loaded_comes_back_equal(tmp_path):
    path = tmp_path / "state.pkl"
    state = {"ids": [f"id-{i}" for i in range(BLOCK + 5)]}
    saved_state.save(path, {"built": "here"}, state, version=3)
    assert saved_state.load(path, lambda header: None, version=3) == state


@pytest.mark.parametrize("packing", [None, 1, 99])
def test_a_file_packed_by_another_version_is_skipped_with_its_reason(tmp_path, caplog, packing):
    path = tmp_path / "state.pkl"
    saved_state.save(path, {"built": "here"}, {"ids": [f"id-{i}" for i in range(BLOCK)]}, version=3)
    header, body = path.read_bytes().split(b"\n", 1)
    fields = json.loads(header)
    if packing is None:  # written before the header said how it was packed
        del fields["packing"]
    else:
        fields["packing"] = packing
    path.write_bytes(json.dumps(fields).encode() + b"\n" + body)
    with caplog.at_level(logging.INFO, logger="musicspace.saved_state"):
        assert saved_state.load(path, lambda header: None, version=3) is None
    reasons = [r.reason for r in caplog.records if hasattr(r, "reason")]
    assert reasons == [f"packed in format {packing or 1}, this version reads {FORMAT}"]
