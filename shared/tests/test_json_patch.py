"""external_metadata merges follow RFC 7396 on MariaDB and SQLite, like the Python reference."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from musicspace_shared.db.json_patch import dumps, merge_patch, merge_patch_expr
from musicspace_shared.db.tables import Track
from tests.factories import create_track

# (target, patch, expected) — the examples of RFC 7396 appendix A, plus nesting cases.
CASES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    (
        None,
        {"audio_features": {"energy": 0.5, "source": "m2"}},
        {"audio_features": {"energy": 0.5, "source": "m2"}},
    ),
    (
        {"audio_features": {"energy": 0.1, "tempo": 99}, "x": 1},
        {"audio_features": {"energy": 0.5}},
        {"audio_features": {"energy": 0.5, "tempo": 99}, "x": 1},
    ),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), CASES)
def test_python_reference_follows_rfc_7396(target, patch, expected) -> None:
    assert merge_patch(target, patch) == expected


@pytest.mark.parametrize(("target", "patch", "expected"), CASES)
async def test_sql_merge_patch_matches_reference(session, target, patch, expected) -> None:
    track = await create_track(session, external_metadata=target)
    dialect = session.bind.dialect
    await session.execute(
        sa.update(Track)
        .where(Track.track_id == track.track_id)
        .values(external_metadata=merge_patch_expr(Track.external_metadata, dumps(patch), dialect))
    )
    await session.commit()
    raw = (
        await session.execute(
            sa.text("SELECT external_metadata FROM track WHERE track_id = :t"),
            {"t": track.track_id},
        )
    ).scalar_one()
    stored = json.loads(raw) if isinstance(raw, str) else raw
    assert stored == expected == merge_patch(target, patch)
