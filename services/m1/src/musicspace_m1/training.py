"""m1 training: the global model from the DB (`musicspace train m1`) and per-user models.

The global model (M1/audio_predictor.pkl) is a gradient-boosted classifier of
P(track in a user's PMS | hybrid features of the track relative to the user's profile):
the user's share of its artist, album, subgenre and genre, audio distance to the profile
(mean/spread) and to the nearest held track, the personal model's log-odds, popularity.
It was chosen by measurement (`musicspace eval playlists`): the audio features alone barely
rank a playlist (an audio centroid reaches NDCG@10 ~0.02), metadata affinity alone ~0.34,
and the learned hybrid is clearly above both. See global_model.py for the protocol.

A personal model (M1/user_models/{userId}/model.pkl + metadata.json) is the user's audio
profile plus a logistic regression over their tracks' features; with fewer than
`min_tracks_for_personal_model` tracks with features the user gets the profile fallback
(the global average audio profile) and the reason.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from musicspace_m1 import VERSION, repository, store
from musicspace_m1.catalog_index import CatalogIndex, build_catalog_index
from musicspace_m1.global_model import fit_global
from musicspace_m1.hybrid import GlobalModel
from musicspace_m1.personal import train_personal
from musicspace_m1.profile import audio_profile, to_raw_units
from musicspace_m1.settings import Settings
from musicspace_shared import model_store
from musicspace_shared.catalog import TrackFrame
from musicspace_shared.db.engine import make_engine, make_sessionmaker
from musicspace_shared.model_store import ModelMeta
from musicspace_shared.sampling import sample_ids


def fit_global_model(
    frame: TrackFrame, user_tracks: dict[Any, list[str]], *, min_tracks: int
) -> tuple[GlobalModel, CatalogIndex]:
    """CPU part of global training (single-threaded BLAS/OpenMP: predictable on a shared host)."""
    with threadpool_limits(limits=1):
        index = build_catalog_index(frame)
        users = [frame.rows(tracks) for _, tracks in sorted(user_tracks.items())]
        return fit_global(index, users, min_tracks=min_tracks), index


def publish_global(settings: Settings, model: GlobalModel) -> ModelMeta:
    meta = ModelMeta(
        version=model_store.new_version(),
        trained_at=model_store.now_iso(),
        rows=int(model.info.get("rows", 0)),
        metrics={"candidate_recall": model.info.get("candidate_recall", 0.0)},
        extra={**model.info, "code_version": VERSION, "min_tracks": model.min_tracks},
    )
    path = store.global_path(settings.model_dir("M1"))
    return model_store.publish_pickle(path, model, meta, keep_previous=True)


async def train_global_from_db(settings: Settings | None = None) -> dict[str, Any]:
    """Train and publish M1/audio_predictor.pkl from the DB's tracks and users' PMS tracks."""
    settings = settings or Settings()
    started = time.perf_counter()
    engine = make_engine(settings)
    try:
        async with make_sessionmaker(engine)() as session:
            frame = await repository.catalog(session)
            user_tracks = await repository.all_user_tracks(session)
    finally:
        await engine.dispose()
    users_in_db = len(user_tracks)
    sampled = sample_ids(user_tracks, settings.train_max_users)
    user_tracks = {uid: user_tracks[uid] for uid in sampled}
    model, _ = await asyncio.to_thread(
        fit_global_model, frame, user_tracks, min_tracks=settings.min_tracks_for_personal_model
    )
    meta = publish_global(settings, model)
    return {
        "model": "M1/audio_predictor.pkl",
        "version": meta.version,
        "trained_at": meta.trained_at,
        "tracks": len(frame),
        "users": len(user_tracks),
        "users_in_db": users_in_db,
        "sha256": meta.sha256,
        "seconds": round(time.perf_counter() - started, 1),
        **model.info,
    }


@dataclass
class UserTrainingInput:
    user_id: int
    owned_rows: np.ndarray  # the user's tracks in the catalog index
    owned_audio: np.ndarray  # (m, 9) standardised features read fresh from the DB (NaN: none)
    owned_total: int


def train_user_model(
    index: CatalogIndex, model: GlobalModel, data: UserTrainingInput, *, min_tracks: int
) -> tuple[store.UserModel, dict[str, Any]]:
    """CPU part of a user's training: profile, personal model, metadata (milliseconds)."""
    started = time.perf_counter()
    own = audio_profile(data.owned_audio)
    fallback = own.tracks < min_tracks
    reason = None
    personal = None
    if fallback:
        reason = (
            f"{own.tracks} of the user's {data.owned_total} PMS tracks have audio features "
            f"(measured or predicted); a personal model needs {min_tracks}: serving the global average profile"
        )
    else:
        personal = train_personal(index, data.owned_audio, held_rows=data.owned_rows)
    audio = model.global_audio if fallback else own
    metrics = {"tracks_with_features": float(own.tracks), "train_seconds": 0.0}
    if personal is not None:
        metrics["personal_train_accuracy"] = round(personal.train_accuracy, 4)
    metrics["train_seconds"] = round(time.perf_counter() - started, 4)
    user_model = store.UserModel(
        user_id=data.user_id,
        fallback=fallback,
        reason=reason,
        audio=audio,
        personal=personal,
        tracks_used=own.tracks,
        version=model_store.new_version(),
        trained_at=model_store.now_iso(),
        metrics=metrics,
    )
    return user_model, store.metadata_for(user_model, profile=to_raw_units(index, audio))
