"""The index snapshot on the volume: what it restores, and when it is not used."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from musicspace_llm import saved_index
from musicspace_llm.index import TrackIndex

from .helpers import make_settings, synthetic_index

MARK = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def saved(tmp_path: Path):  # noqa: ANN201
    settings = make_settings("sqlite+aiosqlite:///unused.db", tmp_path)
    vectors = np.random.default_rng(1).standard_normal((50, 8)).astype(np.float32)
    index = synthetic_index(vectors, np.linspace(0, 100, 50))
    index.warm()
    assert saved_index.save(settings, "tracks__x", "id-1", index, MARK)
    return settings, index


def test_the_snapshot_comes_back_as_saved_its_vectors_mapped(saved) -> None:  # noqa: ANN001
    settings, index = saved
    back = saved_index.load(settings, "tracks__x", "id-1", dim=8, stored=50, durable=True)
    assert back is not None and back.sync_from == MARK
    assert isinstance(back.vectors, np.memmap) and not back.vectors.flags.writeable
    assert np.array_equal(back.vectors, index.vectors)
    assert back.rows.frame.track_ids == index.frame.track_ids
    assert back.rows.frame.titles == index.frame.titles
    assert np.array_equal(back.rows.frame.popularity, index.frame.popularity)
    assert back.rows.frame.index == index.frame.index
    # The name indexes come back built: a snapshot given them does not build its own.
    assert set(back.names) == {"_lexical", "_artist_names", "_artist_rows"}
    restored = TrackIndex(
        frame=back.rows.frame, decades=back.rows.decades, vectors=back.vectors, names=back.names
    )
    assert restored.names_ready
    assert restored.lexical is back.names["_lexical"]
    assert restored.lexical.vocab == index.lexical.vocab
    assert restored.artist_rows("artist 7").tolist() == index.artist_rows("artist 7").tolist()


@pytest.mark.parametrize(
    ("collection", "store_id", "dim", "stored", "durable"),
    [
        ("tracks__y", "id-1", 8, 50, True),  # another embedder's collection
        ("tracks__x", "id-2", 8, 50, True),  # the collection was rebuilt since
        ("tracks__x", "id-1", 16, 50, True),  # another dimension
        ("tracks__x", "id-1", 8, 49, True),  # the collection lacks tracks the file holds
        ("tracks__x", "id-1", 8, 50, False),  # the collection has no durable watermark
    ],
)
def test_a_snapshot_the_collection_cannot_serve_beside_is_not_used(
    saved,  # noqa: ANN001
    collection: str,
    store_id: str,
    dim: int,
    stored: int,
    durable: bool,
) -> None:
    settings, _ = saved
    assert (
        saved_index.load(settings, collection, store_id, dim=dim, stored=stored, durable=durable)
        is None
    )


def test_damaged_vectors_cost_a_restore_from_the_collection_not_the_start(saved) -> None:  # noqa: ANN001
    settings, _ = saved
    (vectors,) = saved_index.snapshot_dir(settings).glob("*.npy")
    vectors.write_bytes(vectors.read_bytes()[:1000])
    assert saved_index.load(settings, "tracks__x", "id-1", dim=8, stored=50, durable=True) is None


def test_a_new_save_replaces_the_older_vectors(saved) -> None:  # noqa: ANN001
    settings, index = saved
    assert saved_index.save(settings, "tracks__x", "id-1", index, MARK)
    assert len(list(saved_index.snapshot_dir(settings).glob("tracks__x-*.npy"))) == 1
