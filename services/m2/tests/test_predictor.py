"""FeaturePredictor internals that serving relies on."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from musicspace_m2.predictor import FeaturePredictor, fit_predictor
from musicspace_m2.text_features import CatalogFile, inputs_from_rows, read_catalog_file

from .helpers import FAST_MODEL


def _fitted(catalog_path: Path) -> tuple[CatalogFile, FeaturePredictor]:
    """The demo subset and a small model fitted on its measured tracks (fresh each test)."""
    catalog = read_catalog_file(catalog_path)
    measured = np.where(catalog.has_features)[0]
    model = fit_predictor(
        catalog.inputs.take(measured), catalog.features[measured], config=FAST_MODEL
    )
    return catalog, model


def test_stage1_equals_the_ridge_over_the_whole_sparse_matrix_and_its_memo_is_not_pickled(
    demo_subset: tuple[Path, Path],
) -> None:
    catalog, model = _fitted(demo_subset[0])
    unseen = inputs_from_rows(
        [
            {"title": "Nobody Knows This", "artist": "An Artist Never Seen", "genre": "jazz"},
            {"title": "Blank", "artist": "", "genre": "", "subgenre": ""},
        ]
    )
    for inputs in (
        catalog.inputs.take(np.arange(300)),
        unseen,
        catalog.inputs.take(np.arange(300)),
    ):
        expected = model.ridge.predict(model.sparse(inputs))
        # The third round is served from the per-value memo the first one filled.
        np.testing.assert_allclose(model.stage1(inputs), expected, rtol=1e-5, atol=1e-6)
    assert model.__dict__.get("_value_caches")
    restored = pickle.loads(pickle.dumps(model))
    assert "_value_caches" not in restored.__dict__
    np.testing.assert_allclose(restored.stage1(unseen), model.stage1(unseen), rtol=1e-12)


def test_each_feature_gets_the_trees_held_out_rows_reward() -> None:
    from musicspace_m2.predictor import N_FEATURES, PredictorConfig, _select_iterations

    rng = np.random.default_rng(1)
    x = rng.normal(size=(3000, 4))
    y = rng.normal(size=(3000, N_FEATURES))  # noise: more trees only overfit
    y[:, 0] = np.sin(2 * x[:, 0]) + x[:, 1] ** 2  # a signal boosting keeps learning
    config = PredictorConfig(hgb_max_iter=60, min_iterations=10)
    chosen = _select_iterations(config, x, y, lambda _message: None)
    assert chosen[0] >= 40
    assert all(n == config.min_iterations for n in chosen[1:]), chosen


def test_the_direct_tree_walk_equals_each_booster_and_is_rebuilt_after_unpickling(
    demo_subset: tuple[Path, Path],
) -> None:
    from musicspace_m2.predictor import TreeSum

    catalog, model = _fitted(demo_subset[0])
    inputs = catalog.inputs.take(np.arange(400))
    x = model.dense(inputs, model.stage1(inputs), model.encode(inputs))
    x[::3, -1] = np.nan  # no release year: the trees' missing-value branches
    x[1::5, -4] = np.nan  # unknown genre
    for booster in model.boosters:
        np.testing.assert_array_equal(TreeSum(booster).predict(x), booster.predict(x))
    first = model.predict(inputs)
    assert model.__dict__.get("_ensembles")
    restored = pickle.loads(pickle.dumps(model))
    assert "_ensembles" not in restored.__dict__
    np.testing.assert_array_equal(restored.predict(inputs), first)
    with pytest.raises(ValueError, match="columns"):
        TreeSum(model.boosters[0]).predict(x[:, :-1])


def test_boosters_whose_internals_differ_predict_through_their_api() -> None:
    from musicspace_m2.predictor import TreeSum, tree_sum

    class Opaque:  # a booster without the private attributes TreeSum reads
        def predict(self, x: np.ndarray) -> np.ndarray:
            return x.sum(axis=1)

    booster = Opaque()
    assert tree_sum(booster) is booster  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        TreeSum(booster)  # type: ignore[arg-type]


class _Rows(list):
    """Stands in for TrackInputs: one entry per track, with the artist keys."""

    def __init__(self, artist_keys: list[str]) -> None:
        super().__init__(artist_keys)
        self.artist_keys = artist_keys


def test_the_artist_mean_baseline_predicts_each_artists_training_mean_else_the_overall_mean() -> (
    None
):
    from musicspace_m2.training import baseline_metrics

    ramp = np.arange(9.0)
    y_train = np.array([ramp, ramp + 2, ramp + 10])  # artist a twice, b once: overall ramp + 4
    # Test rows: artist a (its mean ramp + 1), b (ramp + 10), an artist not in training.
    exact = np.array([ramp + 1, ramp + 10, ramp + 4])
    metrics = baseline_metrics(_Rows(["a", "a", "b"]), y_train, _Rows(["a", "b", "c"]), exact)
    assert metrics["artist_mean_r2_mean"] == pytest.approx(1.0)  # every prediction exact
    assert metrics["global_mean_r2_mean"] < 0.5
