"""bench_signup's pure parts: the libraries it signs up with, and its percentiles."""

from __future__ import annotations

from bench.bench_signup import LIBRARY_SIZE, library_for, percentiles

CATALOG = [(f"cat{i:06d}", f"Title {i}", f"Artist {i % 300}") for i in range(5000)]
KNOWN = {row[0] for row in CATALOG}


def test_a_library_has_2000_distinct_tracks_a_tenth_unknown_in_playlists() -> None:
    library = library_for(CATALOG, user_id=42)
    ids = [item["track_id"] for item in library]
    assert len(ids) == LIBRARY_SIZE == len(set(ids))
    unknown = [item for item in library if item["track_id"] not in KNOWN]
    assert len(unknown) == 200
    assert all(item["title"].startswith("Title") and item["artist"] for item in unknown)
    assert all(item["playlist_id"].startswith("pl-42-") for item in library)
    assert len({item["playlist_id"] for item in library}) == LIBRARY_SIZE // 50


def test_libraries_are_deterministic_per_user_and_differ_between_users() -> None:
    assert library_for(CATALOG, user_id=7) == library_for(CATALOG, user_id=7)
    ids_7 = {item["track_id"] for item in library_for(CATALOG, user_id=7)}
    ids_8 = {item["track_id"] for item in library_for(CATALOG, user_id=8)}
    assert ids_7 != ids_8 and not {i for i in ids_7 if i not in KNOWN} & ids_8


def test_percentiles_are_nearest_rank() -> None:
    assert percentiles([float(v) for v in range(100, 0, -1)]) == {
        "p50": 50.0,
        "p99": 99.0,
        "max": 100.0,
    }
    assert percentiles([3.0]) == {"p50": 3.0, "p99": 3.0, "max": 3.0}
    assert percentiles([]) == {"p50": None, "p99": None, "max": None}
