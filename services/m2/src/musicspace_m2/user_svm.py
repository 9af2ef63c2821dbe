"""Per-user content recommendations: a linear SVM over the content space, with a fallback.

Positives are the user's PMS tracks and likes; negatives their dislikes plus catalog tracks
sampled with a seed derived from the user id (so a retrain on the same data is identical).
Users with fewer than `min_tracks` positives get a fallback the response names.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.svm import LinearSVC

from musicspace_m2.candidates import LinearScore
from musicspace_m2.similar import ContentSpace

Strategy = Literal["personal_svm", "fallback_similar_tracks", "fallback_popular"]


@dataclass
class UserSvm:
    coef: np.ndarray  # (d,) over the content space's columns
    intercept: float
    space_version: str
    fingerprint: str
    positives: int
    negatives: int
    train_accuracy: float
    basis: str = ""  # the content space's basis (similar.ContentSpace.basis) it was fitted on

    # Kept sparse on disk: an SVM fitted on a few hundred rows has weights on the columns
    # those rows use only (at 1M tracks ~3k of 403k columns): 1.6 MB a user dense, 23 KB
    # sparse (160 GB -> ~2.3 GB of files for 100k users, and less to read on every visit).
    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        coef = state.pop("coef")
        at = np.flatnonzero(coef)
        state["coef_sparse"] = (len(coef), at.astype(np.int32), coef[at])
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        if "coef_sparse" in state:  # files written before were dense (still read)
            size, at, values = state.pop("coef_sparse")  # type: ignore[misc]
            coef = np.zeros(size, dtype=np.float32)
            coef[at] = values
            state["coef"] = coef
        self.__dict__.update(state)

    def fits(self, space: ContentSpace) -> bool:
        """Whether it can score this space: its columns (the space it was fitted on, or a
        later one of the same basis)."""
        same = self.space_version == space.version or (self.basis and self.basis == space.basis)
        return bool(same) and len(self.coef) == space.matrix.shape[1]


def fingerprint(*, positives: list[str], dislikes: list[str], space_version: str) -> str:
    """Changes when the user's tracks or reactions change, or the content space is rebuilt."""
    text = (
        "+" + ",".join(sorted(positives)) + "|-" + ",".join(sorted(dislikes)) + "|" + space_version
    )
    return hashlib.sha256(text.encode()).hexdigest()


def train_user_svm(
    *,
    space: ContentSpace,
    positive_rows: np.ndarray,
    disliked_rows: np.ndarray,
    seed: int,
    negatives_per_positive: int = 4,
    c: float = 0.5,
    fp: str = "",
) -> UserSvm:
    """Fit the SVM (milliseconds: a few hundred sparse rows)."""
    rng = np.random.default_rng(seed)
    taken = np.zeros(len(space), dtype=bool)
    taken[positive_rows] = True
    taken[disliked_rows] = True
    pool = np.where(~taken)[0]
    n_neg = min(len(pool), max(50, negatives_per_positive * len(positive_rows)))
    sampled = rng.choice(pool, n_neg, replace=False) if n_neg else np.empty(0, dtype=np.int64)
    negatives = np.concatenate([disliked_rows, sampled]).astype(np.int64)
    rows = np.concatenate([positive_rows, negatives])
    labels = np.concatenate([np.ones(len(positive_rows)), np.zeros(len(negatives))])
    x = space.matrix[rows]
    svm = LinearSVC(C=c, class_weight="balanced", random_state=seed, max_iter=5000).fit(x, labels)
    return UserSvm(
        coef=svm.coef_.ravel().astype(np.float32),
        intercept=float(svm.intercept_[0]),
        space_version=space.version,
        fingerprint=fp,
        positives=len(positive_rows),
        negatives=len(negatives),
        train_accuracy=float(svm.score(x, labels)),
        basis=space.basis,
    )


def svm_score(model: UserSvm) -> LinearScore:
    """The SVM's decision function over the space's rows."""
    return LinearScore(model.coef, constant=model.intercept)


def fallback_strategy(positive_rows: np.ndarray) -> Strategy:
    """The fallback's name (fallback_score): similar tracks, or popular ones without any."""
    return "fallback_similar_tracks" if len(positive_rows) else "fallback_popular"


def fallback_score(space: ContentSpace, positive_rows: np.ndarray) -> LinearScore:
    """Similar to the user's tracks (+ 0.05 x popularity) when they have any, else popularity."""
    if len(positive_rows):
        return LinearScore(space.centroid(positive_rows), popularity_weight=0.05)
    return LinearScore(np.zeros(space.matrix.shape[1], dtype=np.float32), popularity_weight=1.0)


def user_seed(user_key: int | str) -> int:
    return int.from_bytes(hashlib.sha256(str(user_key).encode()).digest()[:4], "little")
