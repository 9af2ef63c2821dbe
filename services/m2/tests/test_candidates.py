"""The candidate index gives the rows scoring every track gives, without scoring them all."""

from __future__ import annotations

import numpy as np
import pytest

from musicspace_cli.demo_data import DEMO_CATALOG
from musicspace_m2 import candidates
from musicspace_m2.candidates import LinearScore
from musicspace_m2.repository import TrackTable
from musicspace_m2.similar import ContentSpace, best_distinct, build_space
from musicspace_m2.space_updates import update_space
from musicspace_m2.text_features import read_catalog_file
from musicspace_m2.user_svm import fallback_score, svm_score, train_user_svm, user_seed

EXACT = 1 << 62  # an index_min no catalog reaches: every row scored


@pytest.fixture(autouse=True)
def small_cells(monkeypatch):
    """Cells and batches scaled down with the catalog (~9,500 tracks, not millions)."""
    monkeypatch.setattr(candidates, "LEAF", 128)
    monkeypatch.setattr(candidates, "BATCH_ROWS", 512)


@pytest.fixture(scope="module")
def space() -> ContentSpace:
    catalog = read_catalog_file(DEMO_CATALOG)
    rows = np.arange(0, len(catalog.track_ids), 3)  # ~9,500 tracks, every genre
    return build_space(
        track_ids=[catalog.track_ids[i] for i in rows],
        inputs=catalog.inputs.take(rows),
        features=catalog.features[rows],
    )


class Counted(LinearScore):
    scored: int = 0

    def of(self, matrix, popularity, rows):  # type: ignore[no-untyped-def]
        object.__setattr__(self, "scored", self.scored + len(rows))
        return super().of(matrix, popularity, rows)


def _users(space: ContentSpace, count: int) -> list[np.ndarray]:
    """Taste-like row sets: a few artists' tracks and some others."""
    rng = np.random.default_rng(7)
    artists = np.array(space.columns.artists)
    out = []
    for _ in range(count):
        picked = rng.choice(artists, 3, replace=False)
        rows = np.flatnonzero(np.isin(artists, picked))
        out.append(np.unique(np.concatenate([rows, rng.choice(len(space), 0, replace=False)])))
    return out


def _scores(space: ContentSpace, rows: np.ndarray) -> list[tuple[str, LinearScore]]:
    model = train_user_svm(
        space=space, positive_rows=rows, disliked_rows=rows[:0], seed=user_seed(int(rows[0]))
    )
    return [
        ("svm", svm_score(model)),
        ("similar_tracks", fallback_score(space, rows)),
        ("popular", fallback_score(space, rows[:0])),
    ]


def test_every_cell_bound_holds_for_its_rows(space):
    cells = space.cells
    for rows in _users(space, 5):
        for _, score in _scores(space, rows):
            every = score.of(space.matrix, space.popularity, np.arange(len(space)))
            bound = cells.bounds(score)
            first = np.zeros(len(space), dtype=bool)
            first[cells.first_rows(score)] = True
            for cell in range(len(cells)):
                members = cells.rows_of_group(cell)
                members = members[~first[members]]
                if len(members):
                    assert every[members].max() <= bound[cell]


def test_the_cells_cover_every_row_once(space):
    cells = space.cells
    assert np.array_equal(np.sort(cells.order), np.arange(len(space)))
    assert len(cells) > 1


@pytest.mark.parametrize("filtered", [False, True])
def test_the_index_ranks_as_scoring_every_track(space, filtered):
    mask = None
    if filtered:
        mask = np.array([g == space.inputs.genres[0] for g in space.inputs.genres])
    scored, compared = 0, 0
    for rows in _users(space, 6):
        for name, score in _scores(space, rows):
            exact = best_distinct(
                space, score, exclude_rows=rows, limit=50, mask=mask, index_min=EXACT
            )
            counted = Counted(score.weights, score.constant, score.popularity_weight)
            fast = best_distinct(
                space, counted, exclude_rows=rows, limit=50, mask=mask, index_min=0
            )
            assert fast == exact, name
            assert not set(r for r, _ in fast) & set(rows.tolist())
            scored += counted.scored
            compared += len(space)
    assert scored < 0.8 * compared  # many rows never scored (more so in larger catalogs)


def test_similar_through_the_index_matches_scoring_every_track(space):
    for row in np.random.default_rng(3).choice(len(space), 25, replace=False).tolist():
        exact = space.similar(row=row, limit=20, index_min=EXACT)
        fast = space.similar(row=row, limit=20, index_min=0)
        # Equal scores may be cut at a different row (the index: the lower rows first).
        assert [s for _, s in fast] == [s for _, s in exact]
        assert row not in {r for r, _ in fast}


def test_a_space_with_rows_placed_since_the_fit_keeps_its_layout(space):
    ids = space.track_ids
    table = TrackTable(ids, space.inputs, np.nan_to_num(space.features), [None] * len(ids))
    first = update_space(None, table, impute=None, model_version="v")
    moved = table.features.copy()
    moved[:5] += 0.1
    changed = TrackTable(ids, space.inputs, moved, [None] * len(ids))
    placed = update_space(first.kept, changed, impute=None, model_version="v")
    assert not placed.full_fit and placed.space.layout == first.space.layout
    rows = _users(placed.space, 1)[0]
    score = fallback_score(placed.space, rows)
    assert best_distinct(
        placed.space, score, exclude_rows=rows, limit=100, index_min=0
    ) == best_distinct(placed.space, score, exclude_rows=rows, limit=100, index_min=EXACT)


def test_a_stored_svm_keeps_its_weights_sparse_and_reads_back_the_same(space):
    import pickle
    from dataclasses import replace

    model = train_user_svm(
        space=space, positive_rows=_users(space, 1)[0], disliked_rows=np.zeros(0, np.int64), seed=3
    )
    assert 0 < np.count_nonzero(model.coef) < len(model.coef) // 4
    stored = pickle.dumps(model)
    assert len(stored) < model.coef.nbytes // 4
    back = pickle.loads(stored)
    assert back.coef.dtype == np.float32
    assert np.array_equal(back.coef, model.coef)
    assert replace(back, coef=model.coef) == replace(model, coef=model.coef)
    # A file written before (the weights dense in the pickle) still reads.
    legacy = object.__new__(type(model))
    legacy.__setstate__(model.__dict__.copy())
    assert np.array_equal(legacy.coef, model.coef)
