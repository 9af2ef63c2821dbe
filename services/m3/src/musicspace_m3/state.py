"""The in-memory world a recommendation needs: catalog index and the user x track matrix.

Built once from the DB at startup; rebuilt when a cheap fingerprint query says tracks, PMS
lists or interactions changed, by `load_snapshot` in a low-priority worker process
(musicspace_shared.offload: neither the event loop nor the interpreter lock of the requests is
taken). Readers take a reference to the current snapshot, so a rebuild never changes data
under a running request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from musicspace_m3 import repository
from musicspace_m3.catalog_index import CatalogIndex, build_catalog_index
from musicspace_m3.collab import Collab, build_collab
from musicspace_m3.features import Profile
from musicspace_m3.groups import UserData
from musicspace_m3.repository import RawUser
from musicspace_m3.settings import Settings
from musicspace_shared.catalog import TrackFrame, load_tracks
from musicspace_shared.db.engine import standalone_session
from musicspace_shared.offload import run_coroutine


@dataclass(frozen=True)
class Snapshot:
    index: CatalogIndex
    collab: Collab
    catalog_fingerprint: str
    activity_fingerprint: str


def build_collab_from_users(index: CatalogIndex, users: Mapping[int, RawUser]) -> Collab:
    """Every user's positives (PMS, likes, plays) and negatives (dislikes, skips) as matrix rows."""
    frame = index.frame
    return build_collab(
        {uid: frame.rows(raw.positives) for uid, raw in users.items()},
        len(index),
        negatives={uid: frame.rows(raw.negatives) for uid, raw in users.items()},
    )


def build_snapshot(
    frame: TrackFrame,
    users: Mapping[int, RawUser],
    *,
    catalog_fp: str,
    activity_fp: str,
    index: CatalogIndex | None = None,
) -> Snapshot:
    """Rebuild what changed: the catalog index only when the catalog fingerprint moved."""
    if index is None or index.fingerprint != catalog_fp:
        index = build_catalog_index(frame, fingerprint=catalog_fp)
    return Snapshot(index, build_collab_from_users(index, users), catalog_fp, activity_fp)


# The worker process' last catalog index: reused while the catalog fingerprint is unchanged,
# so a change of plays or likes rebuilds only the user x track matrix.
_worker_index: CatalogIndex | None = None


def load_snapshot(settings: Settings, *, catalog_fp: str, activity_fp: str) -> Snapshot:
    """In the rebuild worker: read what changed from the DB and build the snapshot."""
    return run_coroutine(_load_snapshot(settings, catalog_fp=catalog_fp, activity_fp=activity_fp))


async def _load_snapshot(settings: Settings, *, catalog_fp: str, activity_fp: str) -> Snapshot:
    global _worker_index
    index = _worker_index if _worker_index and _worker_index.fingerprint == catalog_fp else None
    async with standalone_session(settings) as session:
        frame = index.frame if index is not None else await load_tracks(session)
        users = await repository.load_all_users(session)
    snapshot = build_snapshot(
        frame, users, catalog_fp=catalog_fp, activity_fp=activity_fp, index=index
    )
    _worker_index = snapshot.index
    return snapshot


def user_data(index: CatalogIndex, raw: RawUser) -> UserData:
    """Catalog positions of a user's positives, negatives and interactions."""
    lookup = index.frame.index
    return UserData(
        positives=index.frame.rows(raw.positives),
        negatives=index.frame.rows(raw.negatives),
        interactions={lookup[t]: v for t, v in raw.interactions.items() if t in lookup},
    )


def profile_for(index: CatalogIndex, user_id: int, raw: RawUser) -> Profile:
    """The serving profile: positives in, owned/liked/disliked out."""
    data = user_data(index, raw)
    excluded = index.frame.rows(sorted(raw.owned))
    return Profile(
        key=user_id,
        positives=data.positives,
        excluded=np.unique(excluded),
        interactions=data.interactions,
    )
