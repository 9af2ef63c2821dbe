"""The personal model: a per-user logistic regression over the audio features.

Positives are the user's tracks with features, negatives a fixed-seed sample of catalog tracks
with features; inputs are the standardised features and their squares (so it can learn
"around this tempo", not only "faster is better"). It trains in milliseconds and its output is
one input of the global hybrid ranker.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicspace_m1.catalog_index import CatalogIndex

NEGATIVES_PER_POSITIVE = 4
MIN_NEGATIVES = 200
L2 = 0.01  # on weights summing to 1, about sklearn's C=0.5 at a few hundred rows


@dataclass
class PersonalModel:
    coef: np.ndarray  # (18,)
    intercept: float
    positives: int
    train_accuracy: float

    def decision(self, index: CatalogIndex, rows: np.ndarray) -> np.ndarray:
        """Log-odds for the given catalog rows; NaN where a track has no features."""
        return _design(index.audio[rows]) @ self.coef + self.intercept


def _design(audio: np.ndarray) -> np.ndarray:
    return np.hstack([audio, audio**2])


def train_personal(
    index: CatalogIndex, held_audio: np.ndarray, *, held_rows: np.ndarray, seed: int = 7
) -> PersonalModel | None:
    """Fit the user's model on the standardised features of their tracks; None without any.

    Negatives are a fixed-seed sample of catalog tracks with features, minus held_rows.
    """
    pos_audio = held_audio[~np.isnan(held_audio).any(axis=1)]
    if len(pos_audio) == 0:
        return None
    pool = np.flatnonzero(index.has_audio)
    rng = np.random.default_rng(seed)
    n_neg = min(len(pool), max(MIN_NEGATIVES, NEGATIVES_PER_POSITIVE * len(pos_audio)))
    neg = rng.choice(pool, size=n_neg, replace=False) if n_neg else np.zeros(0, dtype=np.int64)
    neg = neg[~np.isin(neg, held_rows)]
    x = _design(np.vstack([pos_audio, index.audio[neg]]))
    y = np.concatenate([np.ones(len(pos_audio)), np.zeros(len(neg))])
    # Balanced weights: the number of negatives is a sampling choice, not a prior.
    weights = np.where(y == 1, 0.5 / len(pos_audio), 0.5 / max(len(neg), 1))
    coef, intercept = _fit_logistic(x, y, weights, l2=L2)
    predicted = (x @ coef + intercept) > 0
    return PersonalModel(
        coef=coef,
        intercept=intercept,
        positives=len(pos_audio),
        train_accuracy=float(np.average(predicted == (y == 1), weights=weights)),
    )


def _fit_logistic(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, *, l2: float, steps: int = 12
) -> tuple[np.ndarray, float]:
    """Weighted L2-penalised logistic regression by Newton's method (19 unknowns: < 1 ms).

    Written out rather than sklearn's lbfgs: it is deterministic, has no thread pool, and a
    user's training stays in milliseconds even on a busy 2-core machine.
    """
    design = np.hstack([x, np.ones((len(x), 1))])
    beta = np.zeros(design.shape[1])
    penalty = np.full(design.shape[1], l2)
    penalty[-1] = 0.0  # the intercept is not shrunk
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        grad = design.T @ (w * (p - y)) + penalty * beta
        hess = (design * (w * p * (1 - p))[:, None]).T @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-6:
            break
    return beta[:-1], float(beta[-1])
