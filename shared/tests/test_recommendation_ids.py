import pytest

from musicspace_shared.recommendation_ids import NO_ARM, new_id, parse


def test_an_id_names_its_source_and_arm():
    rid = new_id("m3", "control")
    assert parse(rid).source == "m3"
    assert parse(rid).arm == "control"
    assert new_id("m3", "control") != rid


def test_default_arm_is_none():
    assert parse(new_id("blend")).arm == NO_ARM


@pytest.mark.parametrize("bad", ["", "m3", "m3.control", "M3.a.5f2c9a1e0b7d4c3a", "m3.a.xyz"])
def test_malformed_ids_are_refused(bad):
    with pytest.raises(ValueError):
        parse(bad)


def test_bad_source_is_refused():
    with pytest.raises(ValueError):
        new_id("m3.evil")
