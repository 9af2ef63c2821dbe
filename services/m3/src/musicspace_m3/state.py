"""The in-memory world a recommendation needs: catalog index and the user x track matrix.

Built once from the DB at startup; rebuilt when a cheap fingerprint query says tracks, PMS
lists or interactions changed, by `load_snapshot` in a low-priority worker process
(musicspace_shared.offload: neither the event loop nor the interpreter lock of the requests is
taken), which also keeps it on the model volume for the next replica that starts
(musicspace_m3.saved_snapshot), as does `musicspace train m3`. Readers take a reference to the current snapshot, so a rebuild
never changes data under a running request.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from musicspace_m3 import repository, saved_snapshot
from musicspace_m3.catalog_index import CatalogIndex, build_catalog_index
from musicspace_m3.collab import Collab, build_collab, collab_from_pairs
from musicspace_m3.features import Profile
from musicspace_m3.groups import UserData
from musicspace_m3.repository import Activity, RawUser
from musicspace_m3.settings import Settings
from musicspace_shared import saved_state
from musicspace_shared.catalog import TrackFrame, load_tracks
from musicspace_shared.db.engine import standalone_session
from musicspace_shared.offload import run_coroutine
from musicspace_shared.packing import Packed


@dataclass(frozen=True)
class Snapshot:
    index: CatalogIndex
    collab: Collab
    catalog_fingerprint: str
    activity_fingerprint: str


def build_collab_from_users(index: CatalogIndex, users: Mapping[int, RawUser]) -> Collab:
    """Every user's positives (PMS, likes, plays) and negatives (dislikes, skips) as matrix
    rows, users in id order (whatever order the database gave them in)."""
    frame = index.frame
    ordered = sorted(users)
    return build_collab(
        {uid: frame.rows(users[uid].positives) for uid in ordered},
        len(index),
        negatives={uid: frame.rows(users[uid].negatives) for uid in ordered},
    )


def collab_from_activity(n_tracks: int, activity: Activity) -> Collab:
    """build_collab_from_users on arrays: the same rows, positives and negatives (RawUser's
    rules: PMS, likes and plays not mostly skipped are positive; dislikes and mostly skipped
    tracks negative unless in the PMS), users in id order (as build_collab_from_users)."""
    a = activity
    every = np.concatenate([a.pms_users, a.users])
    keys = np.unique(every)

    def pair_keys(users: np.ndarray, rows: np.ndarray) -> np.ndarray:
        known = rows >= 0
        return np.searchsorted(keys, users[known]) * n_tracks + rows[known]

    positive = (a.likes > 0) | ((a.plays > a.skips) & (a.likes >= 0))
    negative = (a.likes < 0) | ((a.skips > a.plays) & (a.likes <= 0))
    pms = pair_keys(a.pms_users, a.pms_rows)
    positives = _distinct(np.concatenate([pms, pair_keys(a.users[positive], a.rows[positive])]))
    negatives = _distinct(pair_keys(a.users[negative], a.rows[negative]))
    negatives = negatives[~_within(negatives, _distinct(pms))]
    return collab_from_pairs(
        keys.tolist(),
        positives // n_tracks,
        positives % n_tracks,
        negatives % n_tracks,
        n_tracks,
    )


def _distinct(values: np.ndarray) -> np.ndarray:
    """np.unique by sorting: its hash table is pathological on these keys (user * n_tracks +
    track share their low bits): 15 s instead of 0.3 s for 3.4M keys."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values


def _within(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """np.isin by binary search in distinct sorted keys (np.isin hashes them: 2.5 s for 1M)."""
    if not len(sorted_keys):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, values), len(sorted_keys) - 1)
    return sorted_keys[at] == values


def build_snapshot(
    frame: TrackFrame,
    users: Mapping[int, RawUser] | Activity,
    *,
    catalog_fp: str,
    activity_fp: str,
    index: CatalogIndex | None = None,
) -> Snapshot:
    """Rebuild what changed: the catalog index only when the catalog fingerprint moved."""
    if index is None or index.fingerprint != catalog_fp:
        index = build_catalog_index(frame, fingerprint=catalog_fp)
    if isinstance(users, Activity):
        collab = collab_from_activity(len(index), users)
    else:
        collab = build_collab_from_users(index, users)
    return Snapshot(index, collab, catalog_fp, activity_fp)


# The worker process' last catalog index, when it is not on the volume (state_on_volume off,
# or the volume refused it): reused while the catalog fingerprint is unchanged, so a change of
# plays or likes rebuilds only the user x track matrix. On the volume, the worker reads it
# from the saved snapshot instead and holds nothing between rebuilds.
_worker_index: CatalogIndex | None = None


def load_snapshot(settings: Settings, *, catalog_fp: str, activity_fp: str) -> Packed[Snapshot]:
    """In the rebuild worker: read what changed from the DB and build the snapshot, packed
    once for the serving process and the volume."""
    return run_coroutine(_load_snapshot(settings, catalog_fp=catalog_fp, activity_fp=activity_fp))


async def _load_snapshot(
    settings: Settings, *, catalog_fp: str, activity_fp: str
) -> Packed[Snapshot]:
    global _worker_index
    index = _worker_index if _worker_index and _worker_index.fingerprint == catalog_fp else None
    if index is None and settings.state_on_volume:
        saved = saved_snapshot.load(settings, catalog_fp=catalog_fp)
        index = saved.index if saved is not None else None
    read_at = time.time()
    async with standalone_session(settings) as session:
        if index is None:
            index = build_catalog_index(await load_tracks(session), fingerprint=catalog_fp)
        async with AsyncSession(session.bind) as other:  # PMS and interactions side by side
            activity = await repository.load_activity(session, index.frame.track_ids, other=other)
    snapshot = build_snapshot(
        index.frame, activity, catalog_fp=catalog_fp, activity_fp=activity_fp, index=index
    )
    del activity
    packed = Packed(snapshot)
    saved = settings.state_on_volume and saved_snapshot.save(
        settings, snapshot, read_at=read_at, packed=packed
    )
    _worker_index = None if saved else snapshot.index
    return packed


async def save_snapshot_for_replicas(settings: Settings) -> dict[str, Any]:
    """After a training (`musicspace train m3`): the snapshot of the catalog and the activity
    as they are now, built and saved on the volume, so the replicas that start next read it
    instead of reading every user's activity; whether it was saved, and the seconds."""
    started = time.monotonic()
    async with standalone_session(settings) as session:
        catalog_fp = await repository.catalog_fingerprint(session)
        activity_fp = await repository.activity_fingerprint(session)
    await _load_snapshot(settings, catalog_fp=catalog_fp, activity_fp=activity_fp)
    path = saved_snapshot.snapshot_path(settings)
    header = saved_state.read_header(path) or {}
    return {
        "saved": header.get("activity_fingerprint") == activity_fp
        and header.get("catalog_fingerprint") == catalog_fp,
        "tracks": header.get("tracks"),
        "users": len(header.get("users", [])),
        "path": str(path),
        "seconds": round(time.monotonic() - started, 1),
    }


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
