"""m2 in `musicspace eval playlists`: the per-user SVM recommender over a catalog file.

Same content space and SVM as the service (similar.py, user_svm.py). Missing audio features
are filled with subgenre means here rather than by training the full m2 model in-process
(minutes on 2 cores); the audio block is one of six and this changes little.
"""

from __future__ import annotations

import numpy as np

from musicspace_m2.predictor import FeaturePredictor
from musicspace_m2.settings import Settings
from musicspace_m2.similar import ContentSpace, best_distinct, build_space
from musicspace_m2.text_features import TrackInputs, norm
from musicspace_m2.user_svm import fallback_score, svm_score, train_user_svm, user_seed
from musicspace_shared.catalog import TrackFrame

MIN_TRACKS = 10
INDEX_MIN_TRACKS = Settings.model_fields["candidate_index_min_tracks"].default


def inputs_from_frame(frame: TrackFrame) -> TrackInputs:
    n = len(frame)
    return TrackInputs(
        titles=list(frame.titles),
        artists=list(frame.artists),
        albums=list(frame.albums),
        album_ids=[""] * n,
        genres=[norm(g) for g in frame.genres],
        subgenres=[norm(s) for s in frame.subgenres],
        popularity=np.asarray(frame.popularity, dtype=np.float64),
        years=np.full(n, np.nan),
    )


def space_from_frame(frame: TrackFrame, predictor: FeaturePredictor | None = None) -> ContentSpace:
    inputs = inputs_from_frame(frame)
    impute = predictor.predict if predictor is not None else None
    return build_space(
        track_ids=list(frame.track_ids), inputs=inputs, features=frame.features, impute=impute
    )


def recommend_for_eval(
    *,
    frame: TrackFrame,
    train_users: dict[str, list[str]],
    seeds: dict[str, list[str]],
    k: int,
    predictor: FeaturePredictor | None = None,
    min_tracks: int = MIN_TRACKS,
    index_min: int = INDEX_MIN_TRACKS,
) -> dict[str, list[str]]:
    """Top-k track ids per eval user (seeds excluded), as the service's recommend would rank them."""
    del train_users  # content-based: other users' playlists do not enter a user's SVM
    space = space_from_frame(frame, predictor)
    out: dict[str, list[str]] = {}
    for user, seed_ids in seeds.items():
        rows = np.array(
            sorted({space.index[t] for t in seed_ids if t in space.index}), dtype=np.int64
        )
        if len(rows) >= min_tracks:
            model = train_user_svm(
                space=space,
                positive_rows=rows,
                disliked_rows=np.empty(0, dtype=np.int64),
                seed=user_seed(user),
            )
            score = svm_score(model)
        else:
            score = fallback_score(space, rows)
        ranked = best_distinct(space, score, exclude_rows=rows, limit=k, index_min=index_min)
        out[user] = [space.track_ids[i] for i, _ in ranked]
    return out
