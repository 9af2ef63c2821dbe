"""The set-based write and the job-row queries, on both engines."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from musicspace_enrichment import repository as repo
from musicspace_shared.db.tables import Track, utcnow
from musicspace_shared.features import FEATURES
from tests.factories import create_track

VALUES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 111.0, -7.5)


async def _blank_track(session, **overrides):
    blank = {name: None for name in FEATURES} | {"features_source": None}
    return await create_track(session, **(blank | overrides))


def _metadata(value):
    return json.loads(value) if isinstance(value, str) else value


async def test_write_predictions_fills_columns_and_merges_metadata(session, engine):
    keep = {"spotify": {"uri": "x"}, "audio_features": {"old": 1}}
    track = await _blank_track(session, external_metadata=keep)
    async with engine.begin() as conn:
        written = await repo.write_predictions(
            conn, [(track.track_id, VALUES)], model_version="v9", predicted_at=utcnow()
        )
    assert written == 1
    async with engine.connect() as conn:
        row = (
            await conn.execute(sa.select(Track.__table__).where(Track.track_id == track.track_id))
        ).one()
    assert [getattr(row, name) for name in FEATURES] == list(VALUES)
    assert row.features_source == "predicted"
    meta = _metadata(row.external_metadata)
    assert meta["spotify"] == {"uri": "x"}
    assert meta["audio_features"]["old"] == 1  # RFC 7396: nested objects merge, not replace
    assert meta["audio_features"]["source"] == "m2"
    assert meta["audio_features"]["model_version"] == "v9"
    assert meta["audio_features"]["tempo"] == 111.0
    assert "predicted_at" in meta["audio_features"]


async def test_write_predictions_never_overwrites_measured_features(session, engine):
    measured = await create_track(session)  # the factory's tracks are measured
    async with engine.begin() as conn:
        written = await repo.write_predictions(
            conn, [(measured.track_id, VALUES)], model_version="v", predicted_at=utcnow()
        )
    assert written == 0
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(Track.__table__).where(Track.track_id == measured.track_id)
            )
        ).one()
    assert row.features_source == "measured"
    assert row.danceability == measured.danceability
    assert row.external_metadata is None


async def test_write_predictions_twice_applies_once(session, engine):
    track = await _blank_track(session)
    async with engine.begin() as conn:
        first = await repo.write_predictions(
            conn, [(track.track_id, VALUES)], model_version="a", predicted_at=utcnow()
        )
    other = tuple(v + 0.01 for v in VALUES)
    async with engine.begin() as conn:
        second = await repo.write_predictions(
            conn, [(track.track_id, other)], model_version="b", predicted_at=utcnow()
        )
    assert (first, second) == (1, 0)
    async with engine.connect() as conn:
        row = (
            await conn.execute(sa.select(Track.__table__).where(Track.track_id == track.track_id))
        ).one()
    assert _metadata(row.external_metadata)["audio_features"]["model_version"] == "a"


async def test_write_predictions_ids_are_case_sensitive(session, engine):
    lower = await _blank_track(session, track_id="caseTrackAbc")
    upper = await _blank_track(session, track_id="CASETRACKABC")
    async with engine.begin() as conn:
        written = await repo.write_predictions(
            conn, [(lower.track_id, VALUES)], model_version="v", predicted_at=utcnow()
        )
    assert written == 1
    async with engine.connect() as conn:
        source = (
            await conn.execute(
                sa.select(Track.features_source).where(Track.track_id == upper.track_id)
            )
        ).scalar_one()
    assert source is None


async def test_lacking_batch_pages_in_track_id_order(session, engine):
    prefix = "zzpage" + utcnow().strftime("%H%M%S%f")
    ids = [f"{prefix}{i:03d}" for i in range(5)]
    for track_id in reversed(ids):
        await _blank_track(session, track_id=track_id)
    async with engine.connect() as conn:
        first = await repo.lacking_batch(conn, after=prefix, limit=3)
        rest = await repo.lacking_batch(conn, after=first[-1].track_id, limit=10)
    got = [r.track_id for r in first + rest if r.track_id.startswith(prefix)]
    assert got == ids


def test_predict_item_sends_the_track_id():
    assert repo.TrackRow("t1").predict_item() == {"track_id": "t1"}


# SQLite only: MariaDB picks its join order from statistics (the batch drives, measured).
@pytest.mark.parametrize("any_db_url", ["sqlite"], indirect=True)
async def test_write_predictions_on_sqlite_finds_each_track_by_its_primary_key(session, engine):
    """The batch drives the join: not a scan of the whole batch for every lacking track."""
    assert engine.dialect.name == "sqlite"
    tracks = [await _blank_track(session) for _ in range(40)]
    statements: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with engine.begin() as conn:
            await repo.write_predictions(
                conn,
                [(t.track_id, VALUES) for t in tracks[:5]],
                model_version="v",
                predicted_at=utcnow(),
            )
            statement, parameters = statements[-1]
            plan = [
                row[-1]
                for row in await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            ]
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    assert any("SEARCH track USING" in step and "(track_id=?)" in step for step in plan), plan
    assert not any("ix_track_features_source" in step for step in plan), plan
