"""m1's candidate stage: the scan over the user's artists and best (subgenre, genre) groups
returns what scoring every track would, and a group scored from its contiguous slices scores
like prescore."""

from __future__ import annotations

import numpy as np

from musicspace_m1.catalog_index import build_catalog_index
from musicspace_m1.hybrid import _affinity, candidates
from musicspace_m1.profile import audio_profile, build_profile
from musicspace_shared.catalog import TrackFrame
from musicspace_shared.features import FEATURES


def _catalog(n: int = 4000, seed: int = 5) -> TrackFrame:
    rng = np.random.default_rng(seed)
    artist = rng.integers(0, 80, n)
    genre = rng.integers(0, 4, n)
    features = rng.normal(size=(n, len(FEATURES))) * 10 + 50
    features[rng.random(n) < 0.1] = np.nan
    return TrackFrame(
        track_ids=[f"t{i:06d}" for i in range(n)],
        titles=[f"song {i}" for i in range(n)],
        artists=[f"artist {a}" for a in artist],
        albums=[f"album {a % 5}" for a in rng.integers(0, 1000, n)],
        genres=[f"genre {g}" for g in genre],
        subgenres=[f"sub {g * 3 + s}" for g, s in zip(genre, rng.integers(0, 3, n), strict=True)],
        popularity=np.where(rng.random(n) < 0.2, np.nan, rng.integers(0, 100, n).astype(float)),
        features=features,
    )


def _users(index, count: int = 40):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    for _ in range(count):
        rows = rng.choice(len(index), size=int(rng.integers(3, 60)), replace=False)
        profile = build_profile(
            index, rows, global_audio=audio_profile(index.audio[:500]), min_tracks=10
        )
        yield profile, np.union1d(rows, rng.choice(len(index), size=30, replace=False))


def test_the_group_scan_equals_scoring_every_track() -> None:
    index = build_catalog_index(_catalog())
    for profile, excluded in _users(index):
        for n in (10, 400):
            got, aff = candidates(index, profile, exclude=excluded, n=n)
            rows = np.setdiff1d(np.arange(len(index)), excluded)
            scores = aff.prescore(rows)
            want = rows[np.lexsort((rows, -scores))[:n]]
            assert np.array_equal(got, want)


def test_a_groups_slices_score_like_prescore_for_other_artists_tracks() -> None:
    index = build_catalog_index(_catalog())
    for profile, _excluded in _users(index, 20):
        aff = _affinity(index, profile)
        theirs = np.isin(index.artist, index.artist[profile.rows])
        for group in range(len(index.group_subgenre)):
            rows, scores = aff.group_prescore(group)
            assert np.array_equal(rows, index.rows_of_group(group))
            other = ~theirs[rows]
            assert np.array_equal(scores[other], aff.prescore(rows[other]))
