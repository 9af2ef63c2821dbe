"""`musicspace generate`: deterministic synthetic data with the demo's shape, importable."""

from __future__ import annotations

import csv
import gzip
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import musicspace_cli.generate.catalog as catalog_module
from musicspace_cli.demo_data import DEMO_CATALOG, DEMO_PLAYLISTS
from musicspace_cli.generate import Chunks, Demo, Sizes, generate
from musicspace_cli.importer import (
    ImportRejected,
    import_catalog,
    import_interactions,
    import_playlists,
)
from musicspace_cli.main import app
from musicspace_shared.db.tables import Interaction, User
from musicspace_shared.features import FEATURE_RANGES, FEATURES
from musicspace_shared.ids import is_valid_track_id

SIZES = Sizes(tracks=6000, users=120, interactions=9000, seed=7)


@pytest.fixture(scope="module")
def demo() -> Demo:
    return Demo()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory, demo: Demo) -> Path:
    out = tmp_path_factory.mktemp("generated")
    generate(out, SIZES, demo)
    return out


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"track_album_release_date": str})


def test_the_same_seed_writes_the_same_bytes_and_another_seed_does_not(
    generated: Path, demo: Demo, tmp_path: Path
) -> None:
    generate(tmp_path / "again", SIZES, demo)
    generate(tmp_path / "other", Sizes(SIZES.tracks, SIZES.users, SIZES.interactions, 8), demo)
    for name in ("catalog", "playlists", "interactions"):
        same = (tmp_path / "again" / f"{name}.csv.gz").read_bytes()
        assert same == (generated / f"{name}.csv.gz").read_bytes(), name
        assert (tmp_path / "other" / f"{name}.csv.gz").read_bytes() != same, name


def test_the_chunk_sizes_do_not_change_the_bytes(
    generated: Path, demo: Demo, tmp_path: Path
) -> None:
    # One user or a few tracks at a time (a chunk then ends inside no artist but the last)...
    generate(tmp_path / "small", SIZES, demo, Chunks(tracks=1, users=1))
    generate(tmp_path / "odd", SIZES, demo, Chunks(tracks=977, users=37))
    # ... or all at once.
    generate(tmp_path / "whole", SIZES, demo, Chunks(tracks=10**6, users=10**6))
    for name in ("catalog", "playlists", "interactions"):
        expected = (generated / f"{name}.csv.gz").read_bytes()
        for chunking in ("small", "odd", "whole"):
            assert (tmp_path / chunking / f"{name}.csv.gz").read_bytes() == expected, (
                name,
                chunking,
            )


def _peak_mb(demo: Demo, out: Path, sizes: Sizes) -> float:
    tracemalloc.start()
    try:
        generate(out, sizes, demo, Chunks(tracks=1000, users=20))
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def test_memory_is_bounded_by_the_chunks_not_the_size(demo: Demo, tmp_path: Path) -> None:
    small = _peak_mb(demo, tmp_path / "small", Sizes(tracks=3000, users=60, interactions=6000))
    large = _peak_mb(demo, tmp_path / "large", Sizes(tracks=24000, users=480, interactions=48000))
    # 8 times the data; kept across chunks: a few bytes a track, a hash and a count an artist.
    assert large < 1.6 * small, (small, large)  # it was 8.6 times (5.2 -> 44.9 MB)


def test_the_catalog_follows_the_demo_distributions(generated: Path) -> None:
    real, fake = _read(DEMO_CATALOG), _read(generated / "catalog.csv.gz")
    assert len(fake) == SIZES.tracks
    assert fake["track_id"].is_unique and fake["track_id"].map(is_valid_track_id).all()
    # Artists with many tracks: the tracks-per-artist distribution of the demo.
    real_per_artist = real.groupby("track_artist").size()
    fake_per_artist = fake.groupby("track_artist").size()
    assert abs(fake_per_artist.mean() - real_per_artist.mean()) < 0.5
    assert fake_per_artist.max() >= 20
    # 10% without features, the same genres and subgenres, in about the same shares.
    assert 0.07 < fake["danceability"].isna().mean() < 0.13
    assert set(fake["subgenre"]) <= set(real["subgenre"])
    shares = fake["genre"].value_counts(normalize=True)
    real_shares = real["genre"].value_counts(normalize=True)
    assert (shares - real_shares).abs().max() < 0.05
    # Release years as in the demo (its decades in about the same shares).
    decades = lambda f: (f["track_album_release_date"].str[:3]).value_counts(normalize=True)  # noqa: E731
    assert (decades(fake) - decades(real)).abs().max() < 0.05
    # The nine features: in range, and their joint shape (correlations) kept.
    measured = fake.dropna(subset=list(FEATURES))
    for name in FEATURES:
        low, high = FEATURE_RANGES[name]
        assert measured[name].between(low, high).all(), name
    real_corr = real[list(FEATURES)].corr().to_numpy()
    fake_corr = measured[list(FEATURES)].corr().to_numpy()
    assert np.abs(real_corr - fake_corr).max() < 0.1
    assert real_corr[1, 8] > 0.5 and fake_corr[1, 8] > 0.5  # energy goes with loudness


def test_users_have_demo_sized_libraries_and_interactions(generated: Path) -> None:
    libraries = _read(generated / "playlists.csv.gz").groupby("playlist_id").size()
    demo_sizes = _read(DEMO_PLAYLISTS).groupby("playlist_id").size()
    assert len(libraries) == SIZES.users
    assert abs(libraries.median() - demo_sizes.median()) < 15
    interactions = _read(generated / "interactions.csv.gz")
    assert 0.8 * SIZES.interactions <= len(interactions) <= SIZES.interactions
    assert not interactions.duplicated(["user_ref", "track_id"]).any()
    assert set(interactions["like_score"]) == {-1, 0, 1}
    assert 0.1 < (interactions["like_score"] == 1).mean() < 0.2
    assert (interactions["play_count"] >= 1).all()
    catalog_ids = set(_read(generated / "catalog.csv.gz")["track_id"])
    assert set(interactions["track_id"]) <= catalog_ids


async def test_the_importer_takes_the_three_files_and_a_second_run_changes_nothing(
    engine, generated: Path
) -> None:
    await import_catalog(engine, generated / "catalog.csv.gz")
    await import_playlists(engine, generated / "playlists.csv.gz")
    first = await import_interactions(engine, generated / "interactions.csv.gz")
    again = await import_interactions(engine, generated / "interactions.csv.gz")
    rows = len(_read(generated / "interactions.csv.gz"))
    assert first.inserted + first.unchanged == rows  # unchanged: the other engine's run
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, rows)
    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(Interaction)
                .join(User, User.id == Interaction.user_id)
                .where(User.external_ref.like("gen-user-%"))
            )
        ).scalar_one()
    assert stored == rows


async def test_a_bad_interaction_row_rejects_the_file_and_writes_nothing(
    engine, generated: Path, tmp_path: Path
) -> None:
    await import_catalog(engine, generated / "catalog.csv.gz")
    await import_playlists(engine, generated / "playlists.csv.gz")
    track = _read(generated / "catalog.csv.gz")["track_id"].iloc[0]
    path = tmp_path / "bad.csv.gz"
    with gzip.open(path, "wt", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_ref", "track_id", "play_count", "like_score", "skip_count"])
        writer.writerow(["gen-user-0000001", track, "999", "1", "0"])
        writer.writerow(["gen-user-0000001", track, "3", "2", "0"])
        writer.writerow(["nobody", track, "3", "1", "0"])
    async with engine.connect() as conn:
        before = (await conn.execute(sa.select(sa.func.count()).select_from(Interaction))).scalar()
    with pytest.raises(ImportRejected) as excinfo:
        await import_interactions(engine, path)
    assert excinfo.value.errors == [(3, "like_score 2 outside -1..1")]
    # With the bad count fixed, the unknown user alone rejects it.
    with gzip.open(path, "wt", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_ref", "track_id", "play_count", "like_score", "skip_count"])
        writer.writerow(["gen-user-0000001", track, "999", "1", "0"])
        writer.writerow(["nobody", track, "3", "1", "0"])
    with pytest.raises(ImportRejected) as excinfo:
        await import_interactions(engine, path)
    assert excinfo.value.errors == [(3, "unknown user_ref 'nobody'")]
    async with engine.connect() as conn:
        after = (await conn.execute(sa.select(sa.func.count()).select_from(Interaction))).scalar()
    assert after == before


def test_the_command_writes_the_files_and_reports_them(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["generate", "--out", str(tmp_path), "--tracks", "500", "--users", "5", "--json"],
    )
    assert result.exit_code == 0, result.output
    assert '"catalog": 500' in result.stdout
    assert len(_read(tmp_path / "playlists.csv.gz")["playlist_id"].unique()) == 5


def test_artist_names_stay_unique_across_merges_of_the_seen_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(catalog_module, "PENDING_NAMES", 2)
    unique = catalog_module.UniqueNames()
    assert unique(["Blue", "Red", "Blue"]) == ["Blue", "Red", "Blue II"]  # merged after
    assert unique(["Blue", "Green"]) == ["Blue III", "Green"]  # merged again
    assert unique(["Red", "Green", "Blue"]) == ["Red II", "Green II", "Blue IV"]
    # A drawn name that a numeral would make is skipped, and is itself made unique.
    assert unique(["Gold II", "Gold", "Gold", "Gold II"]) == [
        "Gold II",
        "Gold",
        "Gold III",
        "Gold II II",
    ]
