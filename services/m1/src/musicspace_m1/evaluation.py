"""`musicspace eval playlists` entry point for m1: the service's own training and scoring code.

The global model is fitted in-process on the training users plus the eval users' seeds (only
the seeds: held-out tracks are never seen), then every eval user is ranked exactly as
POST /api/m1/recommend ranks a user (profile, personal model, hybrid scorer), without the
per-artist cap (a request with a large max_per_artist gives the same list).
"""

from __future__ import annotations

import logging
import time

from threadpoolctl import threadpool_limits

from musicspace_m1.catalog_index import build_catalog_index
from musicspace_m1.global_model import fit_global
from musicspace_m1.hybrid import rank
from musicspace_m1.personal import train_personal
from musicspace_m1.profile import build_profile
from musicspace_shared.catalog import TrackFrame

logger = logging.getLogger("musicspace.m1.eval")


def recommend_for_eval(
    *, frame: TrackFrame, train_users: dict[str, list[str]], seeds: dict[str, list[str]], k: int
) -> dict[str, list[str]]:
    """Top-k track ids per eval user (seeds excluded)."""
    # One OpenMP thread: on a busy 2-core machine more threads spin and run many times slower.
    with threadpool_limits(limits=1):
        return _recommend(frame=frame, train_users=train_users, seeds=seeds, k=k)


def _recommend(
    *, frame: TrackFrame, train_users: dict[str, list[str]], seeds: dict[str, list[str]], k: int
) -> dict[str, list[str]]:
    started = time.perf_counter()
    index = build_catalog_index(frame)
    users = [frame.rows(t) for t in train_users.values()] + [frame.rows(t) for t in seeds.values()]
    model = fit_global(index, users)
    logger.info("m1 eval: global model %s in %.1fs", model.info, time.perf_counter() - started)
    out = {}
    for user, tracks in seeds.items():
        rows = frame.rows(tracks)
        profile = build_profile(
            index, rows, global_audio=model.global_audio, min_tracks=model.min_tracks
        )
        personal = (
            None
            if profile.fallback
            else train_personal(index, profile.held_audio, held_rows=profile.rows)
        )
        ranked = rank(index, model, profile, personal, exclude=profile.rows, limit=k)
        out[user] = [frame.track_ids[int(i)] for i in ranked.rows]
    return out
