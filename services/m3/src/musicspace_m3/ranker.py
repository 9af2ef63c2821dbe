"""The CatBoost ranker: fit on query groups, predict one user's candidates, explain the top."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from catboost import CatBoost, FeaturesData, Pool

from musicspace_m3.features import FEATURE_GROUPS, FEATURE_NAMES
from musicspace_m3.groups import Groups

# Chosen by measurement (see README / bench): QueryRMSE ranks as well as YetiRank here at a
# fraction of its time on 2 cores; depth 6 keeps a 600-candidate prediction near a millisecond.
DEFAULT_PARAMS: dict[str, Any] = {
    "loss_function": "QueryRMSE",
    "iterations": 400,
    "learning_rate": 0.08,
    "depth": 6,
    "l2_leaf_reg": 3.0,
    "random_seed": 7,
    "thread_count": 2,
    "verbose": False,
    "allow_writing_files": False,
}


def pool(groups: Groups) -> Pool:
    return Pool(groups.x, label=groups.y, group_id=groups.group, feature_names=list(FEATURE_NAMES))


def fit(
    train: Groups,
    *,
    params: dict[str, Any] | None = None,
    eval_set: Groups | None = None,
    init_model: CatBoost | None = None,
) -> CatBoost:
    """Fit a ranker (optionally continuing from init_model: per-user fine-tuning)."""
    model = CatBoost({**DEFAULT_PARAMS, **(params or {})})
    kwargs: dict[str, Any] = {}
    if eval_set is not None and len(eval_set.y):
        kwargs["eval_set"] = pool(eval_set)
    model.fit(pool(train), init_model=init_model, **kwargs)
    return model


def predict(model: CatBoost, x: np.ndarray) -> np.ndarray:
    """Raw scores, one thread: callers parallelise across requests, not inside one."""
    # FeaturesData skips CatBoost's generic input conversion (about half the cost of a 600-row call).
    data = FeaturesData(num_feature_data=np.ascontiguousarray(x, dtype=np.float32))
    return np.asarray(
        model.predict(data, prediction_type="RawFormulaVal", thread_count=1), dtype=np.float64
    )


GROUP_NAMES = list(FEATURE_GROUPS)
_GROUP_COLUMNS = [
    np.array([FEATURE_NAMES.index(f) for f in FEATURE_GROUPS[g]]) for g in GROUP_NAMES
]


def contributions(model: CatBoost, x: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Effect of each feature group on each row's score: score(x) - score(x with the group at reference).

    An occlusion estimate, faithful to the model and one batched predict (rows x groups);
    CatBoost's exact ShapValues take over a second per call here, far beyond the latency budget.
    """
    rows = x.shape[0]
    if rows == 0:
        return np.zeros((0, len(GROUP_NAMES)))
    probe = np.repeat(x[:, None, :], len(GROUP_NAMES), axis=1)  # rows x groups x features
    for g, cols in enumerate(_GROUP_COLUMNS):
        probe[:, g, cols] = reference[cols]
    scores = predict(model, np.concatenate([x, probe.reshape(rows * len(GROUP_NAMES), x.shape[1])]))
    return scores[:rows, None] - scores[rows:].reshape(rows, len(GROUP_NAMES))


def top_drivers(effects: np.ndarray, *, k: int = 3) -> dict[str, float]:
    """The k feature groups that moved this score most (signed effect on the score)."""
    order = np.argsort(-np.abs(effects))[:k]
    return {GROUP_NAMES[i]: round(float(effects[i]), 4) for i in order if effects[i] != 0}


def ndcg_at(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray, k: int = 10) -> float:
    """Mean NDCG@k over query groups with at least one positive (binary relevance)."""
    values = []
    for g in np.unique(groups):
        rows = groups == g
        lab = labels[rows]
        if lab.sum() == 0:
            continue
        order = np.argsort(-scores[rows], kind="stable")[:k]
        discounts = 1.0 / np.log2(np.arange(2, k + 2))
        dcg = float((lab[order] * discounts[: len(order)]).sum())
        ideal = float(discounts[: int(min(k, lab.sum()))].sum())
        values.append(dcg / ideal)
    return float(np.mean(values)) if values else 0.0


def to_bytes(model: CatBoost) -> bytes:
    """The .cbm bytes (CatBoost saves to a path: write a temp file, read it back)."""
    fd, tmp = tempfile.mkstemp(suffix=".cbm")
    os.close(fd)
    try:
        model.save_model(tmp)
        return Path(tmp).read_bytes()
    finally:
        Path(tmp).unlink(missing_ok=True)


class IncompatibleModel(ValueError):
    """A model trained on another feature set (older code): it must be retrained, not served."""


def from_bytes(data: bytes) -> CatBoost:
    """Deserialize a .cbm and check it was trained on this code's feature set."""
    model = CatBoost()
    model.load_model(blob=data)
    if list(model.feature_names_ or []) != list(FEATURE_NAMES):
        raise IncompatibleModel(
            f"model features {len(model.feature_names_ or [])} != {len(FEATURE_NAMES)} expected: retrain m3"
        )
    return model
