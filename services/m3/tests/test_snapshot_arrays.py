"""The snapshot's user x track matrix from arrays (what the service loads) equals the one
from RawUser dicts (what training and the evaluation build), row for row."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from musicspace_m3 import repository
from musicspace_m3.catalog_index import build_catalog_index
from musicspace_m3.state import build_collab_from_users, collab_from_activity
from musicspace_shared.catalog import load_tracks
from tests.factories import create_interaction, create_track, create_user

# (plays, like, skips): liked, played, mostly skipped, disliked, skipped but liked, even.
KINDS = [(0, 1, 0), (5, 0, 1), (1, 0, 4), (2, -1, 0), (0, 1, 3), (2, 0, 2)]


async def test_arrays_and_dicts_give_the_same_matrix_and_counts(session: AsyncSession) -> None:
    tracks = [(await create_track(session)).track_id for _ in range(len(KINDS) + 2)]
    for owned in (tracks[:2], tracks[2:4], []):  # PMS tracks, some also interacted with
        user = await create_user(session, tracks=owned)
        for track_id, (plays, like, skips) in zip(tracks[1:], KINDS, strict=False):
            await create_interaction(
                session,
                user_id=user.id,
                track_id=track_id,
                play_count=plays,
                like_score=like,
                skip_count=skips,
            )
    index = build_catalog_index(await load_tracks(session))
    users = await repository.load_all_users(session)
    activity = await repository.load_activity(session, index.frame.track_ids)
    expected = build_collab_from_users(index, users)
    got = collab_from_activity(len(index), activity)
    assert got.row_of == expected.row_of
    assert (got.matrix != expected.matrix).nnz == 0
    assert np.array_equal(got.track_users, expected.track_users)
    assert np.array_equal(got.track_negatives, expected.track_negatives)
    assert expected.track_negatives.sum() > 0 and expected.matrix.nnz > 0
    # PMS and interactions read side by side on two connections: the same arrays.
    async with AsyncSession(session.bind) as other:
        both = await repository.load_activity(session, index.frame.track_ids, other=other)
    assert all(
        np.array_equal(getattr(both, f.name), getattr(activity, f.name))
        for f in dataclasses.fields(activity)
    )


async def test_a_user_whose_joined_rows_the_database_cut_is_read_row_by_row(
    session: AsyncSession, monkeypatch
) -> None:
    """MariaDB cuts a GROUP_CONCAT past group_concat_max_len (a warning, not an error): such a
    user's rows are read again one by one, so the activity is the same as with no limit."""
    if session.get_bind().dialect.name == "sqlite":
        pytest.skip("SQLite's group_concat has no length limit")
    tracks = [(await create_track(session)).track_id for _ in range(12)]
    heavy = await create_user(session, tracks=tracks)  # 12 PMS rows: past a 100-byte limit
    light = await create_user(session, tracks=tracks[:1])
    for i, track_id in enumerate(tracks):
        await create_interaction(session, user_id=heavy.id, track_id=track_id, play_count=i)
    await create_interaction(session, user_id=light.id, track_id=tracks[0], skip_count=3)
    await session.commit()
    ids = (await load_tracks(session)).track_ids
    whole = await repository.load_activity(session, ids)

    async def short_limit(session: AsyncSession) -> None:
        await session.execute(sa.text("SET SESSION group_concat_max_len = 100"))

    monkeypatch.setattr(repository, "_allow_long_concat", short_limit)
    cut = await repository.load_activity(session, ids)

    def rows(activity: repository.Activity) -> tuple[list, list]:
        pms = sorted(zip(activity.pms_users.tolist(), activity.pms_rows.tolist(), strict=True))
        inter = zip(
            *(getattr(activity, f).tolist() for f in ("users", "rows", "plays", "likes", "skips")),
            strict=True,
        )
        return pms, sorted(inter)

    assert rows(cut) == rows(whole)
    pms, inter = rows(whole)
    mine = {heavy.id, light.id}
    assert len([r for r in pms if r[0] in mine]) == 13
    assert sorted((r[2], r[4]) for r in inter if r[0] == heavy.id) == [(i, 0) for i in range(12)]
    assert [r[4] for r in inter if r[0] == light.id] == [3]
