"""m3's snapshot kept on the model volume: a replica starts from it while the catalog is the
same, catches up with the activity behind, and never loads one an erasure may have outdated."""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import numpy as np

from musicspace_m3 import saved_snapshot
from musicspace_m3.service import Recommender
from musicspace_m3.settings import Settings
from musicspace_m3.training import train_global_from_db
from musicspace_shared.metrics import ServiceMetrics
from tests import runtimes
from tests.runtimes import events

from .helpers import make_settings, new_user, users_with_tracks


def started(settings: Settings) -> AbstractAsyncContextManager[Recommender]:
    return runtimes.started(Recommender(settings, metrics=ServiceMetrics("m3")))


async def test_a_replica_starts_from_the_saved_snapshot_and_catches_up(
    m3_db_url: str, tmp_path: Path
) -> None:
    settings = make_settings(m3_db_url, tmp_path)
    async with started(settings) as first:
        assert first.snapshot is not None and events(first, "snapshot_from_volume") == 0
        built = first.snapshot
    assert saved_snapshot.snapshot_path(settings).is_file()

    async with started(settings) as second:
        loaded = second.snapshot
        assert loaded is not None and events(second, "snapshot_from_volume") == 1
        assert second.rebuilds._pool is None  # nothing was read or built in a worker
        assert loaded.activity_fingerprint == built.activity_fingerprint
        assert loaded.index.frame.track_ids == built.index.frame.track_ids
        assert loaded.collab.row_of == built.collab.row_of
        assert (loaded.collab.matrix != built.collab.matrix).nnz == 0
        assert np.array_equal(loaded.collab.track_users, built.collab.track_users)
        assert second.watcher is not None
        assert second.watcher.seen == (built.catalog_fingerprint, built.activity_fingerprint)

        # A user added since: the watcher's round rebuilds the activity behind the requests
        # (the catalog index is the saved one) and saves the newer snapshot.
        _uid, owned = (await users_with_tracks(m3_db_url))[0]
        await new_user(m3_db_url, owned[:5])
        assert await second.refresh()
        assert second.snapshot is not None
        assert second.snapshot.collab.n_users == built.collab.n_users + 1
        assert second.snapshot.catalog_fingerprint == built.catalog_fingerprint

    async with started(settings) as third:
        assert third.snapshot is not None and events(third, "snapshot_from_volume") == 1
        assert third.snapshot.collab.n_users == built.collab.n_users + 1


async def test_a_changed_catalog_or_a_damaged_file_is_built_instead(
    m3_db_url: str, tmp_path: Path
) -> None:
    settings = make_settings(m3_db_url, tmp_path)
    async with started(settings) as first:
        assert first.snapshot is not None
        catalog_fp = first.snapshot.catalog_fingerprint
    assert saved_snapshot.load(settings, catalog_fp=catalog_fp) is not None
    assert saved_snapshot.load(settings, catalog_fp=catalog_fp + "x") is None

    path = saved_snapshot.snapshot_path(settings)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a torn copy
    assert saved_snapshot.load(settings, catalog_fp=catalog_fp) is None
    async with started(settings) as second:
        assert second.snapshot is not None and events(second, "snapshot_from_volume") == 0
        assert second.snapshot.catalog_fingerprint == catalog_fp
    assert saved_snapshot.load(settings, catalog_fp=catalog_fp) is not None  # written again

    path.write_bytes(b'{"format": 0}\n')  # an older version's file
    assert saved_snapshot.load(settings, catalog_fp=catalog_fp) is None


async def test_an_erasure_deletes_it_and_outdates_one_read_before(
    m3_db_url: str, tmp_path: Path
) -> None:
    settings = make_settings(m3_db_url, tmp_path)
    user, _owned = (await users_with_tracks(m3_db_url))[0]
    async with started(settings) as first:
        assert first.snapshot is not None and user in first.snapshot.collab.row_of
        snapshot = first.snapshot
        assert first.forget_saved_state(10**15) == []  # not in it: kept
        read_before = time.time()
        removed = first.forget_saved_state(user)
    path = saved_snapshot.snapshot_path(settings)
    assert removed and removed[0]["paths"] == ["M3/snapshot/current.pkl"]
    assert removed[0]["bytes"] > 0 and not path.exists()
    catalog_fp = snapshot.catalog_fingerprint

    # A rebuild that began reading before the erasure and saved after it: never loaded.
    saved_snapshot.save(settings, snapshot, read_at=read_before)
    assert path.exists() and saved_snapshot.load(settings, catalog_fp=catalog_fp) is None
    saved_snapshot.save(settings, snapshot, read_at=time.time() + 1)
    assert saved_snapshot.load(settings, catalog_fp=catalog_fp) is not None
    assert saved_snapshot.forget(settings, user)[0]["bytes"] > 0
    assert saved_snapshot.forget(settings, user) == []  # nothing left the second time


async def test_switched_off_it_is_neither_written_nor_read(m3_db_url: str, tmp_path: Path) -> None:
    settings = make_settings(m3_db_url, tmp_path, state_on_volume=False)
    async with started(settings) as runtime:
        assert runtime.snapshot is not None
    assert not saved_snapshot.folder(settings).exists()


async def test_the_training_saves_the_snapshot_the_first_start_reads(
    m3_db_url: str, tmp_path: Path
) -> None:
    """`musicspace train m3` leaves the snapshot on the volume: no replica reads the activity."""
    settings = make_settings(m3_db_url, tmp_path)
    summary = await train_global_from_db(settings=settings)
    assert summary["snapshot"]["saved"] and summary["snapshot"]["users"] > 0
    async with started(settings) as runtime:
        assert runtime.snapshot is not None and events(runtime, "snapshot_from_volume") == 1
        assert runtime.rebuilds._pool is None  # nothing was read or built in a worker
        assert runtime.snapshot.collab.n_users == summary["snapshot"]["users"]

    off = make_settings(m3_db_url, tmp_path / "off", state_on_volume=False)
    summary = await train_global_from_db(settings=off)
    assert "snapshot" not in summary and not saved_snapshot.folder(off).exists()
