"""The playlist evaluation: split, metrics, baselines and the run on a tiny catalog."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest

from musicspace_cli.eval_baselines import BASELINES
from musicspace_cli.eval_playlists import (
    ndcg_at_k,
    r_precision,
    recall_at_k,
    run,
    score_recommendations,
    split_playlists,
)
from musicspace_shared.catalog import read_catalog_csv, read_playlists_csv
from musicspace_shared.features import FEATURES


def test_split_seeds_half_of_each_long_playlist_deterministically() -> None:
    playlists = {"long": [f"t{i}" for i in range(21)], "short": [f"s{i}" for i in range(9)]}
    known = {t for ts in playlists.values() for t in ts}
    first = split_playlists(playlists, known=known)
    again = split_playlists(dict(reversed(playlists.items())), known=known)
    assert set(first.seeds) == {"long"}
    assert len(first.seeds["long"]) == 10 and len(first.holdout["long"]) == 11
    assert not set(first.seeds["long"]) & set(first.holdout["long"])
    assert first == again


def test_split_ignores_tracks_outside_the_catalog() -> None:
    playlists = {"p": [f"t{i}" for i in range(12)] + ["unknown"]}
    split = split_playlists(playlists, known={f"t{i}" for i in range(12)})
    assert "unknown" not in split.seeds["p"] + split.holdout["p"]


def test_metrics_on_a_known_ranking() -> None:
    relevant = {"a", "b"}
    assert ndcg_at_k(["a", "b", "c"], relevant) == pytest.approx(1.0)
    assert ndcg_at_k(["c", "a"], relevant) == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)))
    assert recall_at_k(["a", "x"], relevant, 50) == 0.5
    assert r_precision(["x", "a", "b"], relevant) == 0.5
    assert ndcg_at_k([], relevant) == 0.0


def _write_fixture(folder: Path, n_tracks: int = 120) -> tuple[Path, Path]:
    rng = np.random.default_rng(3)
    catalog = folder / "catalog.csv.gz"
    header = [
        "track_id",
        "track_name",
        "track_artist",
        "track_popularity",
        "track_album_id",
        "track_album_name",
        "track_album_release_date",
        "genre",
        "subgenre",
        *FEATURES,
    ]
    with gzip.open(catalog, "wt", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i in range(n_tracks):
            feats = [round(float(x), 3) for x in rng.random(len(FEATURES))]
            writer.writerow(
                [
                    f"t{i:03d}",
                    f"song {i}",
                    f"artist {i % 12}",
                    int(rng.integers(0, 100)),
                    f"al{i % 30}",
                    f"album {i % 30}",
                    "2019",
                    ("pop", "rock")[i % 2],
                    f"sub {i % 4}",
                    *feats,
                ]
            )
    playlists = folder / "playlists.csv.gz"
    with gzip.open(playlists, "wt", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["playlist_id", "playlist_name", "playlist_genre", "playlist_subgenre", "track_id"]
        )
        for p in range(6):
            for i in range(p, n_tracks, 6)[:16]:
                writer.writerow([f"pl{p}", f"list {p}", "pop", "sub", f"t{i:03d}"])
    return catalog, playlists


def test_baselines_return_k_unseen_tracks_per_user(tmp_path: Path) -> None:
    catalog, playlists = _write_fixture(tmp_path)
    frame = read_catalog_csv(catalog)
    split = split_playlists(read_playlists_csv(playlists), known=frame.index)
    for name, recommend in BASELINES.items():
        recs = recommend(frame=frame, train_users={}, seeds=split.seeds, k=20)
        assert set(recs) == set(split.seeds), name
        for user, tracks in recs.items():
            assert len(tracks) == 20 and not set(tracks) & set(split.seeds[user]), name


def test_run_reports_metrics_per_model_and_is_deterministic(tmp_path: Path) -> None:
    catalog, playlists = _write_fixture(tmp_path)
    chosen = ["m1", "artist_subgenre_popularity", "implicit_als"]
    first = run(catalog=catalog, playlists=playlists, models=chosen, shipped_playlists=playlists)
    assert set(first) == set(chosen)
    for name in chosen:
        assert set(first[name]) == {"ndcg@10", "recall@50", "r_precision"}
        assert all(0.0 <= v <= 1.0 for v in first[name].values())
    assert (
        run(catalog=catalog, playlists=playlists, models=chosen, shipped_playlists=playlists)
        == first
    )


def test_run_rejects_unknown_model_names(tmp_path: Path) -> None:
    catalog, playlists = _write_fixture(tmp_path)
    with pytest.raises(ValueError, match="unknown model"):
        run(catalog=catalog, playlists=playlists, models=["nope"])


def test_blend_row_fuses_the_rankings_the_models_gave_in_the_same_run(
    tmp_path: Path, monkeypatch
) -> None:
    """blend alone runs m1, m2 and m3 once each and reports only what was asked for; its
    figure is the service's fusion of exactly those rankings."""
    from musicspace_cli import eval_playlists
    from musicspace_recommend.evaluation import blend_for_eval

    catalog, playlists = _write_fixture(tmp_path)
    runs: list[str] = []

    def fake(name: str):  # noqa: ANN202 - a recommender that ranks by a per-model rotation
        def recommend(*, frame, train_users, seeds, k):  # noqa: ANN001, ANN202
            runs.append(name)
            ids = sorted(frame.index)
            shift = {"m1": 0, "m2": 7, "m3": 13}[name]
            return {user: (ids[shift:] + ids[:shift])[:k] for user in seeds}

        return recommend

    monkeypatch.setattr(eval_playlists, "load_recommender", fake)
    rankings: dict = {}
    result = run(
        catalog=catalog,
        playlists=playlists,
        models=["blend", "m3"],
        shipped_playlists=playlists,
        rankings=rankings,
    )
    assert list(result) == ["blend", "m3"] and sorted(runs) == ["m1", "m2", "m3"]
    expected = score_recommendations(
        blend_for_eval({m: rankings[m] for m in ("m1", "m2", "m3")}, k=50), rankings["_holdout"]
    )
    assert result["blend"] == expected
