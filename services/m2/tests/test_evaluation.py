"""m2 in the evaluations: `eval features` (run) and the playlist recommender."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

from musicspace_cli.eval_features import run, write_dev_truth
from musicspace_m2.evaluation import recommend_for_eval
from musicspace_shared.catalog import read_catalog_csv, read_playlists_csv
from musicspace_shared.features import FEATURES

from .helpers import FAST_MODEL


@pytest.mark.slow
def test_eval_features_reports_m2_and_baselines_and_is_deterministic(
    demo_subset: tuple[Path, Path], tmp_path: Path
) -> None:
    catalog = demo_subset[0]
    truth = write_dev_truth(catalog=catalog, out=tmp_path / "truth.csv", seed=3)
    first = run(catalog=catalog, truth=truth, config=FAST_MODEL)
    assert set(first) == {"m2", "global_mean", "genre_mean", "artist_mean"}
    for metrics in first.values():
        assert {f"r2_{f}" for f in FEATURES} | {f"mae_{f}" for f in FEATURES} | {"r2_mean"} <= set(
            metrics
        )
    # The global mean of the training rows scores about zero; m2 must beat it.
    assert first["m2"]["r2_mean"] > first["global_mean"]["r2_mean"]
    assert run(catalog=catalog, truth=truth, config=FAST_MODEL) == first


def test_dev_truth_grouped_by_duplicates_holds_out_every_copy(
    demo_subset: tuple[Path, Path], tmp_path: Path
) -> None:
    truth = write_dev_truth(
        catalog=demo_subset[0], out=tmp_path / "truth.csv", seed=1, group_duplicates=True
    )
    with open(truth, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and set(rows[0]) == {"track_id", "track_name", "track_artist", "genre", *FEATURES}
    held = {(r["track_name"].lower(), r["track_artist"].lower()) for r in rows}
    with gzip.open(demo_subset[0], "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            if (row["track_name"].lower(), row["track_artist"].lower()) in held:
                assert row["track_id"] in {r["track_id"] for r in rows} or not row["danceability"]


def test_recommend_for_eval_returns_k_tracks_without_seeds(demo_subset: tuple[Path, Path]) -> None:
    frame = read_catalog_csv(demo_subset[0])
    playlists = read_playlists_csv(demo_subset[1])
    seeds = {pid: tracks[: max(3, len(tracks) // 2)] for pid, tracks in list(playlists.items())[:6]}
    result = recommend_for_eval(frame=frame, train_users={}, seeds=seeds, k=15)
    assert set(result) == set(seeds)
    for user, ids in result.items():
        assert len(ids) == 15 and len(set(ids)) == 15
        assert not set(ids) & set(seeds[user])
        assert all(t in frame.index for t in ids)
