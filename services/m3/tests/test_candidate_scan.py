"""The candidate scan over the user's artists, co-listened tracks and best (subgenre, genre)
groups returns exactly the whole-catalog scan's candidates, in the same order, with equal
prescores ordered by catalog position (not by how the rows were found)."""

from __future__ import annotations

import numpy as np
import pytest

from musicspace_m3 import features
from musicspace_m3.catalog_index import build_catalog_index
from musicspace_m3.collab import build_collab
from musicspace_m3.features import (
    Profile,
    candidates,
    candidates_full_scan,
    prescore,
    user_stats,
)
from musicspace_m3.scoring import rank
from musicspace_shared.catalog import TrackFrame
from musicspace_shared.features import FEATURES


def _catalog(n: int, seed: int) -> TrackFrame:
    """Many exact duplicates (same artist, album, genre, popularity, no audio): equal prescores."""
    rng = np.random.default_rng(seed)
    artist = rng.integers(0, 60, n)
    genre = rng.integers(0, 4, n)
    sub = genre * 3 + rng.integers(0, 3, n)
    features = rng.normal(size=(n, len(FEATURES)))
    features[rng.random(n) < 0.3] = np.nan
    return TrackFrame(
        track_ids=[f"t{i:06d}" for i in range(n)],
        titles=[f"song {i % 50}" for i in range(n)],
        artists=[f"artist {a}" for a in artist],
        albums=[f"album {a % 3}" for a in rng.integers(0, 1000, n)],
        genres=[f"genre {g}" for g in genre],
        subgenres=[f"sub {s}" for s in sub],
        popularity=rng.integers(0, 5, n).astype(np.float64) * 20,
        features=features,
    )


def _world(seed: int = 1, n: int = 3000):  # type: ignore[no-untyped-def]
    frame = _catalog(n, seed)
    index = build_catalog_index(frame)
    rng = np.random.default_rng(seed + 1)
    users = {u: rng.choice(n, size=int(rng.integers(2, 40)), replace=False) for u in range(200)}
    return index, build_collab(users, n), users, rng


@pytest.mark.parametrize("first_colistened", [20, 5000])  # some or all co-listened first
def test_group_scan_equals_the_full_scan_in_order(monkeypatch, first_colistened: int) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(features, "_FIRST_COLISTENED", first_colistened)
    index, collab, users, rng = _world()
    ties = 0
    for user, positives in users.items():
        excluded = np.union1d(positives, rng.choice(len(index), size=50, replace=False))
        profile = Profile(key=user, positives=positives, excluded=excluded)
        stats = user_stats(index, collab, profile)
        for limit in (10, 200):
            full = candidates_full_scan(index, stats, profile, limit=limit)
            assert np.array_equal(candidates(index, stats, profile, limit=limit), full)
            assert not np.isin(full, excluded).any()
            scores = prescore(index, stats, full)
            assert (np.diff(scores) <= 0).all()
            same = np.flatnonzero(np.diff(scores) == 0)
            assert (full[same] < full[same + 1]).all()  # equal prescores by catalog position
            ties += len(same)
    assert ties > 100  # the catalog does make equal prescores


def test_a_user_with_nothing_known_gets_the_full_scans_candidates() -> None:
    index, collab, _users, _rng = _world()
    profile = Profile(key="new", positives=np.zeros(0, np.int64), excluded=np.zeros(0, np.int64))
    stats = user_stats(index, collab, profile)
    got = candidates(index, stats, profile, limit=100)
    assert len(got) == 100
    assert np.array_equal(got, candidates_full_scan(index, stats, profile, limit=100))


def test_prescore_of_a_row_does_not_depend_on_the_rows_scored_with_it() -> None:
    index, collab, users, _rng = _world()
    profile = Profile(key=0, positives=users[0], excluded=users[0])
    stats = user_stats(index, collab, profile)
    every = prescore(index, stats, np.arange(len(index)))
    for rows in (np.arange(7), np.arange(5, len(index), 13), np.array([len(index) - 1])):
        assert np.array_equal(prescore(index, stats, rows), every[rows])


class _SameScore:
    """A model that scores every candidate alike: the ranking is the tie-break alone."""

    def predict(self, x: np.ndarray, **_: object) -> np.ndarray:
        return np.zeros(len(x))


def test_equal_model_scores_keep_the_candidates_order(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from musicspace_m3 import ranker

    monkeypatch.setattr(ranker, "predict", lambda model, x: model.predict(x))
    index, collab, users, _rng = _world()
    profile = Profile(key=3, positives=users[3], excluded=users[3])
    stats = user_stats(index, collab, profile)
    ranked = rank(
        index=index,
        collab=collab,
        model=_SameScore(),  # type: ignore[arg-type]
        profile=profile,
        n_candidates=150,
        limit=150,
    )
    assert np.array_equal(ranked.positions, candidates(index, stats, profile, limit=150))


def test_a_groups_scores_from_its_slices_equal_prescore_for_other_artists_tracks() -> None:
    index, collab, users, _rng = _world(seed=3)
    for user, positives in list(users.items())[:40]:
        profile = Profile(key=user, positives=positives, excluded=positives)
        stats = user_stats(index, collab, profile)
        theirs = np.isin(index.artist, index.artist[positives])
        for group in range(len(index.group_subgenre)):
            rows, scores = features._group_prescore(index, stats, group)
            assert np.array_equal(rows, index.rows_of_group(group))
            other = ~theirs[rows]
            assert np.array_equal(scores[other], prescore(index, stats, rows[other]))
