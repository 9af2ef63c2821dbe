"""The shared recommend shape and post-ranking steps: filters, exclusions, cap, paging, cursors."""

from __future__ import annotations

import base64

import numpy as np
import orjson
import pytest
from pydantic import ValidationError

from musicspace_shared.errors import InvalidInput
from musicspace_shared.features import FEATURES
from musicspace_shared.recommend import RecommendRequest, RenderedPage
from musicspace_shared.recommendation_ids import parse
from musicspace_shared.selection import (
    Columns,
    allowed,
    cursor_offset,
    logistic,
    take_page,
    unit_score,
)

N = 30
ENERGY = FEATURES.index("energy")


def _columns() -> Columns:
    features = np.tile(np.linspace(0.0, 1.0, N)[:, None], (1, len(FEATURES)))
    features[3] = np.nan  # a track without features
    return Columns(
        track_index={f"t{i}": i for i in range(N)},
        artists=np.array([i % 6 for i in range(N)]),  # six artists, five tracks each
        genres=["Rock" if i % 2 else "pop" for i in range(N)],
        subgenres=["hard rock" if i % 4 == 1 else "x" for i in range(N)],
        features=features,
        release_dates=[None if i == 5 else f"{1980 + i}-01-01" for i in range(N)],
    )


def _request(**fields: object) -> RecommendRequest:
    return RecommendRequest.model_validate({"user_id": 7, **fields})


RANKED = np.arange(N)[::-1].copy()  # best first: t29, t28, ...


def _all_pages(request: dict, *, limit: int, version: object = "v1") -> list[list[int]]:
    pages, cursor = [], None
    for _ in range(N + 1):
        req = _request(**request, limit=limit, **({"cursor": cursor} if cursor else {}))
        page = take_page(
            RANKED,
            columns=_columns(),
            request=req,
            source="m1",
            version=version,
            mask=allowed(_columns(), req),
        )
        pages.append(RANKED[page.positions].tolist())
        cursor = page.next_cursor
        if cursor is None:
            return pages
    raise AssertionError("paging did not end")


@pytest.mark.parametrize(
    "request_fields",
    [{}, {"max_per_artist": 2}, {"filters": {"genre": "rock"}, "max_per_artist": 1}],
    ids=["plain", "capped", "filtered+capped"],
)
@pytest.mark.parametrize("limit", [1, 4, 7])
def test_pages_concatenate_to_the_one_long_page_without_overlap(request_fields, limit) -> None:
    one = _all_pages(request_fields, limit=200)
    assert len(one) == 1
    pages = _all_pages(request_fields, limit=limit)
    flat = [row for page in pages for row in page]
    assert flat == one[0]
    assert len(set(flat)) == len(flat)
    assert all(len(p) == limit for p in pages[:-1]) and 0 < len(pages[-1]) <= limit


def test_max_per_artist_counts_over_all_pages() -> None:
    flat = [r for p in _all_pages({"max_per_artist": 2}, limit=3) for r in p]
    artists = _columns().artists[flat]
    assert np.bincount(artists).max() == 2 and len(flat) == 12


def test_default_cap_applies_when_the_request_gives_none() -> None:
    req = _request(limit=50)
    page = take_page(RANKED, columns=_columns(), request=req, source="m3", version=1, default_cap=1)
    assert len(page.positions) == 6 and page.next_cursor is None


def test_filters_genre_subgenre_years_and_feature_ranges() -> None:
    cols = _columns()

    def rows(**filters: object) -> list[int]:
        mask = allowed(cols, _request(filters=filters))
        assert mask is not None
        return np.flatnonzero(mask).tolist()

    assert rows(genre=" ROCK ") == [i for i in range(N) if i % 2]
    assert rows(subgenre="Hard Rock") == [i for i in range(N) if i % 4 == 1]
    assert rows(genre="jazz") == []
    assert rows(min_year=2005, max_year=2007) == [25, 26, 27]
    assert 5 not in rows(min_year=1900)  # no release date fails a year range
    high = rows(min_energy=0.9)
    assert high == [i for i in range(N) if i / (N - 1) >= 0.9]
    assert 3 not in rows(max_energy=1.0)  # no features fails a feature range
    assert rows(genre="rock", min_energy=0.9) == [i for i in high if i % 2]


def test_exclude_and_exclude_owned() -> None:
    cols = _columns()
    owned = np.array([0, 1])
    mask = allowed(cols, _request(exclude=["t2", "unknown"]), owned=owned)
    assert mask is not None and np.flatnonzero(~mask).tolist() == [0, 1, 2]
    keep_owned = allowed(cols, _request(exclude_owned=False), owned=owned)
    assert keep_owned is None  # nothing to leave out
    assert allowed(cols, _request()) is None


def test_the_next_page_of_the_last_one_is_null_and_filters_can_leave_fewer() -> None:
    pages = _all_pages({"filters": {"genre": "rock", "min_energy": 0.9}}, limit=10)
    assert pages == [[29, 27]]


def _second_cursor(**fields: object) -> str:
    req = _request(limit=5, **fields)
    page = take_page(RANKED, columns=_columns(), request=req, source="m1", version="v1")
    assert page.next_cursor is not None
    return page.next_cursor


@pytest.mark.parametrize(
    "other",
    [
        {"user_id": 8},
        {"filters": {"genre": "pop"}},
        {"exclude": ["t1"]},
        {"exclude_owned": False},
        {"max_per_artist": 3},
    ],
)
def test_a_cursor_from_another_request_is_refused(other: dict) -> None:
    cursor = _second_cursor()
    with pytest.raises(InvalidInput, match="another request"):
        cursor_offset(_request(cursor=cursor, **other), source="m1", version="v1")


def test_a_cursor_from_another_route_is_refused() -> None:
    with pytest.raises(InvalidInput, match="another request"):
        cursor_offset(_request(cursor=_second_cursor()), source="m3", version="v1")


def test_limit_may_change_between_pages() -> None:
    assert (
        cursor_offset(_request(cursor=_second_cursor(), limit=50), source="m1", version="v1") == 5
    )


def test_an_edited_cursor_is_refused() -> None:
    text = base64.urlsafe_b64decode(_second_cursor() + "==").decode()
    edited = base64.urlsafe_b64encode(("6" + text[1:]).encode()).decode().rstrip("=")
    with pytest.raises(InvalidInput, match="or edited"):
        cursor_offset(_request(cursor=edited), source="m1", version="v1")


def test_a_cursor_issued_before_the_model_changed_reads_on_at_its_offset() -> None:
    assert cursor_offset(_request(cursor=_second_cursor()), source="m1", version="v2") == 5


@pytest.mark.parametrize("cursor", ["abcd", base64.urlsafe_b64encode(b"x.y").decode()])
def test_garbage_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidInput, match="not a cursor"):
        cursor_offset(_request(cursor=cursor), source="m1", version="v1")


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"cursor": "not a cursor!"}, "cursor"),
        ({"filters": {"min_energy": 0.9, "max_energy": 0.1}}, "min_energy"),
        ({"filters": {"min_year": 2001, "max_year": 1999}}, "min_year"),
        ({"filters": {"tempo_min": 100}}, "tempo_min"),
        ({"filters": {"min_tempo": float("nan")}}, "finite"),
        ({"exclude": ["bad id!"]}, "exclude"),
        ({"max_per_artist": 0}, "max_per_artist"),
        ({"exclude_owned": "no"}, "exclude_owned"),
        ({"sort": "new"}, "sort"),
    ],
)
def test_bad_fields_are_refused_by_name(fields: dict, named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        _request(**fields)


def test_scores_map_onto_the_unit_interval_keeping_order() -> None:
    raw = np.array([-50.0, -1.0, 0.0, 0.3, 2.0, 40.0])
    for mapped in (logistic(raw), unit_score(raw, -1.0, 2.0)):
        assert ((mapped >= 0) & (mapped <= 1)).all()
        assert (np.diff(mapped) >= 0).all()
    assert logistic(np.array([0.0]))[0] == 0.5
    assert (np.diff(logistic(raw)) > 0).all()  # strictly: no ties made


def test_every_rendered_page_has_a_fresh_recommendation_id() -> None:
    fields = {"user_id": 7, "source": "m2", "next_cursor": None}
    page = RenderedPage(fields, b"[]")
    first, second = (orjson.loads(page.body()) for _ in range(2))
    assert first["recommendation_id"] != second["recommendation_id"]
    assert parse(first["recommendation_id"]).source == "m2" and first["items"] == []
