"""Numbers and eras in a query become hard filters; numbers in titles stay words."""

from __future__ import annotations

import pytest

from musicspace_llm.numbers import parse_constraints


@pytest.mark.parametrize(
    ("query", "feature", "low", "high"),
    [
        ("fast songs for running over 160 bpm", "tempo", 160, None),
        ("songs faster than 170 bpm", "tempo", 170, None),
        ("under 80 bpm", "tempo", None, 80),
        ("템포 80 이하의 느린 곡", "tempo", None, 80),
        ("BPM 150 이상", "tempo", 150, None),
        ("canciones con más de 140 bpm", "tempo", 140, None),
        ("between 120 and 130 bpm", "tempo", 120, 130),
        ("danceability above 0.85", "danceability", 0.85, None),
        ("energy above 80%", "energy", 0.8, None),
    ],
)
def test_feature_bounds_are_read(
    query: str, feature: str, low: float | None, high: float | None
) -> None:
    constraints = parse_constraints(query)
    assert constraints.ranges == {feature: (low, high)}
    assert not any(
        ch.isdigit() for ch in constraints.rest
    )  # the number is not left to match titles


@pytest.mark.parametrize(
    ("query", "years"),
    [
        ("from the 1980s", (1980, 1989)),
        ("pop hits of the 90s", (1990, 1999)),
        ("2000년대 힙합", (2000, 2009)),
        ("70년대 록", (1970, 1979)),
        ("reggaeton de los 2000", (2000, 2009)),
        ("rock de los años 80", (1980, 1989)),
        ("released after 2015", (2016, 2100)),
        ("music from 2010 to 2015", (2010, 2015)),
        ("90s and 2000s hip hop", (1990, 2009)),
    ],
)
def test_eras_and_years_are_read(query: str, years: tuple[int, int]) -> None:
    assert parse_constraints(query).years == years


@pytest.mark.parametrize("query", ["7 rings", "1999", "Maroon 5", "Summer of 69", "The 1975", "22"])
def test_numbers_in_names_are_not_filters(query: str) -> None:
    constraints = parse_constraints(query)
    assert constraints.empty and constraints.rest == query


def test_an_impossible_value_is_not_a_filter() -> None:
    assert parse_constraints("danceability above 3.5").empty
