"""m2's content space kept on the model volume: built and saved by the training, a start or
the rebuild worker, read by the next replica while the model and the catalog are unchanged."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import numpy as np

from musicspace_m2 import saved_space
from musicspace_m2.runtime import Runtime, load_space, load_space_anew
from musicspace_m2.settings import Settings
from musicspace_m2.training import train_global_from_db
from musicspace_shared.db.migrate import upgrade
from musicspace_shared.metrics import ServiceMetrics
from tests import runtimes
from tests.runtimes import events

from .helpers import FAST_MODEL, make_settings


def started(settings: Settings) -> AbstractAsyncContextManager[Runtime]:
    return runtimes.started(Runtime(settings, metrics=ServiceMetrics("m2")))


async def test_a_replica_reads_the_space_the_first_one_built(
    trained: Any, m2_db_url: str, model_root: Path
) -> None:
    settings = make_settings(m2_db_url, model_root)
    path = saved_space.space_path(settings)
    path.unlink(missing_ok=True)  # another test's app may have saved one
    async with started(settings) as first:
        assert first.space is not None, "a start with a model builds the space before ready"
        assert events(first, "catalog_rebuilds") == 1 and events(first, "space_from_volume") == 0
        built, key = first.space, first.space_key
    assert path.is_file()

    async with started(settings) as second:
        assert events(second, "space_from_volume") == 1
        assert events(second, "catalog_rebuilds") == 0
        assert second.space is not None and second.space_key == key
        assert second.space.track_ids == built.track_ids
        assert (second.space.matrix != built.matrix).nnz == 0
        assert np.array_equal(second.space.popularity, built.popularity)
        assert key is not None
        assert saved_space.load(settings, (key[0] + "-other", *key[1:])) is None

        # The rebuild worker saves what it builds too.
        path.unlink()
        kept = second.kept_space
        space, worker_key = await second.rebuilds.run(load_space_anew, settings, kept)
        assert space is not None and worker_key == key and path.is_file() and kept.is_file()
        # The next round, in a fresh worker, compares with the build the last one kept in the
        # file: nothing changed, so no space is sent.
        again, again_key = await second.rebuilds.run(load_space, settings, kept)
        assert again is None and again_key == key
    assert not kept.exists() and not kept.parent.exists()  # the stop removes the file


async def test_switched_off_it_is_neither_read_nor_written(
    trained: Any, m2_db_url: str, model_root: Path
) -> None:
    settings = make_settings(m2_db_url, model_root, state_on_volume=False)
    path = saved_space.space_path(settings)
    path.unlink(missing_ok=True)
    async with started(settings) as runtime:
        assert runtime.space is not None and events(runtime, "space_from_volume") == 0
    assert not path.exists()


async def test_a_start_before_any_catalog_still_starts(
    trained: Any, model_root: Path, tmp_path: Path
) -> None:
    """A fresh install: the model is there, the catalog not yet (bootstrap imports it)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    await asyncio.to_thread(upgrade, url)
    async with started(make_settings(url, model_root)) as runtime:
        assert runtime.holder.held is not None and runtime.space is None  # built on demand
    assert events(runtime, "space_from_volume") == 0


async def test_the_training_saves_the_space_the_first_start_reads(
    m2_db_url: str, tmp_path: Path
) -> None:
    """`musicspace train m2` builds the space for the model it publishes: no replica builds."""
    settings = make_settings(m2_db_url, tmp_path)
    summary = await train_global_from_db(
        settings=settings, config=FAST_MODEL, progress=lambda _m: None
    )
    assert summary["space"]["tracks"] > 0 and saved_space.space_path(settings).is_file()
    async with started(settings) as runtime:
        assert events(runtime, "space_from_volume") == 1
        assert events(runtime, "catalog_rebuilds") == 0
        assert runtime.space is not None and runtime.space_key is not None
        assert runtime.space_key[0] == summary["version"]
        assert len(runtime.space.track_ids) == summary["space"]["tracks"]

    off = make_settings(m2_db_url, tmp_path / "off", state_on_volume=False)
    summary = await train_global_from_db(settings=off, config=FAST_MODEL, progress=lambda _m: None)
    assert "space" not in summary and not saved_space.space_path(off).exists()
