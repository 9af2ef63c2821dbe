"""The pure parts: reciprocal rank fusion, arm assignment, which models fit a user, the eval row."""

from __future__ import annotations

from collections import Counter

import pytest
from pydantic import ValidationError

from musicspace_recommend.arms import assign, bucket, parse_arms
from musicspace_recommend.evaluation import blend_for_eval
from musicspace_recommend.fusion import fuse
from musicspace_recommend.planning import plan
from musicspace_recommend.repository import UserData
from musicspace_recommend.settings import Settings


def test_fusion_sums_weighted_reciprocal_ranks_and_normalises_to_one() -> None:
    fused = fuse({"a": ["x", "y"], "b": ["x", "z"]}, k=10)
    assert [f.track_id for f in fused] == ["x", "y", "z"]
    assert fused[0].score == pytest.approx(1.0) and fused[0].ranks == {"a": 1, "b": 1}
    assert fused[1].score == pytest.approx((1 / 12) / (2 / 11))
    weighted = fuse({"a": ["x", "y"], "b": ["y", "x"]}, k=10, weights={"a": 3})
    assert [f.track_id for f in weighted] == ["x", "y"]


def test_fusion_depth_restriction_zero_weight_and_ties_are_deterministic() -> None:
    assert [f.track_id for f in fuse({"a": ["x", "y", "z"]}, depth=2)] == ["x", "y"]
    only_llm = fuse({"llm": ["q"], "m3": ["x", "q"]}, restrict_to="llm")
    assert [f.track_id for f in only_llm] == ["q"]
    assert fuse({"a": ["x"], "b": ["y"]}, weights={"b": 0}) == fuse({"a": ["x"]})
    tie = fuse({"a": ["y", "x"], "b": ["x", "y"]})
    assert [f.track_id for f in tie] == ["x", "y"]  # equal scores: by track id
    assert fuse({}) == [] and fuse({"a": []}) == []
    with pytest.raises(ValueError):
        fuse({"a": ["x"]}, k=0)


def test_arms_are_deterministic_follow_the_shares_and_move_with_the_salt() -> None:
    arms = parse_arms("blend:50,m3:25,m1:25")
    users = range(1, 8001)
    split = Counter(assign(u, arms, "s1").name for u in users)
    assert abs(split["blend"] / 8000 - 0.5) < 0.03 and abs(split["m3"] / 8000 - 0.25) < 0.03
    assert [assign(u, arms, "s1") for u in users] == [assign(u, arms, "s1") for u in users]
    moved = sum(assign(u, arms, "s1") != assign(u, arms, "s2") for u in users)
    assert moved > 2000
    assert bucket(42, "s1") == bucket(42, "s1") != bucket(42, "s2")


@pytest.mark.parametrize(
    "spec", ["", "blend", "blend:x", "als:10", "blend:10,blend:5", "blend:0", "blend:-1"]
)
def test_a_bad_arm_split_is_refused_at_start(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_arms(spec)
    with pytest.raises(ValidationError):
        Settings(arms=spec)


def test_models_fit_the_users_data() -> None:
    settings = Settings()
    cold, library, plays = UserData(0, 0), UserData(5, 0), UserData(0, 3)
    assert plan("blend", cold, settings, query=False).primary == []
    assert plan("blend", library, settings, query=False).primary == ["m1", "m2", "m3"]
    assert plan("blend", plays, settings, query=False).primary == ["m3"]
    single = plan("m1", library, settings, query=True)
    assert (single.primary, single.fallback, "llm" in single.not_asked) == (
        ["m1"],
        ["m2", "m3"],
        False,
    )
    assert plan("m1", plays, settings, query=False).fallback == ["m3"]
    assert plan("blend", library, Settings(m2_weight=0), query=False).primary == ["m1", "m3"]
    assert plan("popular", library, settings, query=False).primary == []


def test_the_eval_row_fuses_each_models_top_depth_or_serves_the_chosen_model() -> None:
    rankings = {"m1": {"u": ["a", "b"]}, "m2": {"u": ["b", "c"]}, "m3": {"u": ["c", "b"]}}
    assert blend_for_eval(rankings, k=2, settings=Settings())["u"] == ["b", "c"]
    top_only = Settings(depth=1, m1_weight=1, m2_weight=1, m3_weight=1)
    assert blend_for_eval(rankings, k=5, settings=top_only)["u"] == ["a", "b", "c"]  # a tie
    assert blend_for_eval(rankings, k=5, settings=Settings(depth=1))["u"] == ["c", "a", "b"]
    assert blend_for_eval(rankings, k=5, settings=Settings(blend_method="m3")) == {"u": ["c", "b"]}
