"""The rebuild worker places only new and changed rows in the content space."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from musicspace_cli.demo_data import DEMO_CATALOG
from musicspace_m2 import space_updates
from musicspace_m2.repository import TrackTable
from musicspace_m2.similar import build_space
from musicspace_m2.space_updates import update_space
from musicspace_m2.text_features import read_catalog_file


def _impute(inputs):  # a stand-in feature model: deterministic, row by row
    return np.tile(np.arange(9, dtype=np.float64) / 10, (len(inputs), 1))


@pytest.fixture(scope="module")
def table() -> TrackTable:
    catalog = read_catalog_file(DEMO_CATALOG)
    rows = np.arange(2000)
    ids = [catalog.track_ids[i] for i in rows]
    features = catalog.features[rows].copy()
    features[::10] = np.nan  # some tracks without features, as in the real catalog
    return TrackTable(ids, catalog.inputs.take(rows), features, [None] * len(rows))


def _subset(table: TrackTable, rows: np.ndarray) -> TrackTable:
    return TrackTable(
        [table.track_ids[i] for i in rows],
        table.inputs.take(rows),
        table.features[rows],
        [None] * len(rows),
    )


def _dense(space, track_id):
    return space.matrix[space.index[track_id]].toarray()


def test_the_first_build_is_the_full_fit(table):
    update = update_space(None, table, impute=_impute, model_version="v1")
    fresh = build_space(
        track_ids=table.track_ids,
        inputs=table.inputs,
        features=table.features,
        impute=_impute,
        tag="v1",
    )
    assert update.full_fit and update.changed
    assert (update.space.matrix != fresh.matrix).nnz == 0
    assert update.space.version == fresh.version
    # The worker keeps the rows and where each track's row is, not the space it hands over.
    assert update.kept.matrix is update.space.matrix
    assert update.kept.rows.rows(fresh.track_ids).tolist() == list(range(len(fresh.track_ids)))
    assert update.kept.basis == fresh.basis and len(update.kept.digests) == len(fresh.track_ids)


def test_no_content_change_keeps_the_space(table):
    first = update_space(None, table, impute=_impute, model_version="v1")
    again = update_space(first.kept, table, impute=_impute, model_version="v1")
    assert not again.changed and again.space is None
    assert again.rows_placed == 0


def test_a_changed_row_is_placed_and_the_others_are_taken_over(table):
    first = update_space(None, table, impute=_impute, model_version="v1")
    inputs = replace(table.inputs, genres=list(table.inputs.genres))
    changed = table.track_ids[5]
    inputs.genres[5] = "rock" if inputs.genres[5] != "rock" else "pop"
    edited = TrackTable(table.track_ids, inputs, table.features, table.sources)
    update = update_space(first.kept, edited, impute=_impute, model_version="v1")
    assert update.changed and not update.full_fit and update.rows_placed == 1
    new, old = update.space, first.space
    assert not np.allclose(_dense(new, changed), _dense(old, changed))
    placed = first.kept.fit.rows(inputs.take(np.array([5])), table.features[[5]])
    assert np.allclose(_dense(new, changed), placed.toarray())
    others = [t for t in table.track_ids if t != changed]
    assert all(np.array_equal(_dense(new, t), _dense(old, t)) for t in others[:300])


def test_added_and_removed_tracks_keep_every_other_row(table):
    base = _subset(table, np.arange(0, 2000, 2))
    first = update_space(None, base, impute=_impute, model_version="v1")
    rows = np.concatenate([np.arange(2, 2000, 2), [1, 3, 7]])  # one removed, three added
    grown = _subset(table, np.sort(rows))
    update = update_space(first.kept, grown, impute=_impute, model_version="v1")
    assert update.rows_placed == 3 and not update.full_fit
    space = update.space
    assert space.track_ids == grown.track_ids
    assert table.track_ids[0] not in space.index
    for t in grown.track_ids[:200]:
        if t in first.space.index:
            assert np.array_equal(_dense(space, t), _dense(first.space, t))
    assert space.matrix.shape == (len(grown.track_ids), first.space.matrix.shape[1])
    assert update.kept.rows.rows(space.track_ids).tolist() == list(range(len(space.track_ids)))


def test_many_changes_or_a_new_model_refit(table, monkeypatch):
    first = update_space(None, table, impute=_impute, model_version="v1")
    assert update_space(first.kept, table, impute=_impute, model_version="v2").full_fit
    monkeypatch.setattr(space_updates, "REFIT_SHARE", 0.001)
    popularity = table.inputs.popularity + 1
    edited = TrackTable(
        table.track_ids,
        replace(table.inputs, popularity=popularity),
        table.features,
        table.sources,
    )
    assert update_space(first.kept, edited, impute=_impute, model_version="v1").full_fit
