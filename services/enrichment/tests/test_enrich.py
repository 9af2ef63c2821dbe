"""predict_rows (bad-item isolation, bounded attempts) and the per-user enrichment."""

from __future__ import annotations

import sqlalchemy as sa

from musicspace_enrichment import repository as repo
from musicspace_enrichment.clients import M2Client
from musicspace_enrichment.enrich import enrich_tracks_of_user, predict_rows
from musicspace_shared.errors import UpstreamUnavailable
from musicspace_shared.http import ServiceClient
from services.enrichment.tests.fakes import FakeM2


def _rows(n: int, prefix: str = "r") -> list[repo.TrackRow]:
    return [repo.TrackRow(f"{prefix}{i:04d}") for i in range(n)]


def _client(fake: FakeM2) -> M2Client:
    return M2Client(ServiceClient("m2", "http://m2.test", retries=0, transport=fake.transport()))


async def test_predict_rows_predicts_every_row():
    fake = FakeM2()
    outcome = await predict_rows(
        _rows(25), call=_client(fake).predict, max_attempts=3, retry_delay_s=0
    )
    assert len(outcome.ok) == 25 and outcome.failures == []
    assert outcome.model_version == "fake-1"
    assert fake.calls == 1


async def test_predict_rows_gives_up_on_an_unpredictable_item_after_bounded_attempts():
    fake = FakeM2(bad_ids={"r0003"})
    outcome = await predict_rows(
        _rows(10), call=_client(fake).predict, max_attempts=3, retry_delay_s=0
    )
    assert [f[:2] for f in outcome.failures] == [("r0003", 3)]
    assert len(outcome.ok) == 9
    assert fake.calls == 3  # the batch, then the bad item alone twice more


async def test_predict_rows_isolates_an_item_that_makes_m2_reject_the_batch():
    fake = FakeM2(reject_ids={"r0006"})
    outcome = await predict_rows(
        _rows(16), call=_client(fake).predict, max_attempts=2, retry_delay_s=0
    )
    assert [f[0] for f in outcome.failures] == ["r0006"]
    assert "422" in outcome.failures[0][2]
    assert sorted(t for t, _ in outcome.ok) == [f"r{i:04d}" for i in range(16) if i != 6]


async def test_predict_rows_propagates_m2_outage():
    fake = FakeM2(down=True)
    try:
        await predict_rows(_rows(3), call=_client(fake).predict, max_attempts=3, retry_delay_s=0)
    except UpstreamUnavailable as exc:
        assert "m2" in exc.detail
    else:
        raise AssertionError("expected UpstreamUnavailable")


async def _any_user_with_lacking(engine) -> int:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                sa.text(
                    "SELECT ut.user_id FROM user_track ut JOIN track t ON t.track_id = ut.track_id "
                    "WHERE t.features_source IS NULL GROUP BY ut.user_id ORDER BY COUNT(*) DESC LIMIT 1"
                )
            )
        ).scalar_one()


async def test_enrich_user_tracks_fills_lacking_tracks_then_skips_on_repeat(db):
    user_id = await _any_user_with_lacking(db)
    fake = FakeM2()
    first = await enrich_tracks_of_user(
        engine=db, m2=_client(fake), user_id=user_id, batch_size=7, max_attempts=2, retry_delay_s=0
    )
    assert first.status == "ok" and first.lacking > 0
    assert first.enriched == first.lacking
    async with db.connect() as conn:
        _, still = await repo.user_track_counts(conn, user_id)
    assert still == []
    calls = fake.calls
    second = await enrich_tracks_of_user(
        engine=db, m2=_client(fake), user_id=user_id, batch_size=7, max_attempts=2, retry_delay_s=0
    )
    assert second.status == "skipped" and second.enriched == 0
    assert fake.calls == calls  # no duplicate work


async def test_enrich_user_tracks_reports_m2_down(db):
    user_id = await _any_user_with_lacking(db)
    report = await enrich_tracks_of_user(
        engine=db,
        m2=_client(FakeM2(down=True)),
        user_id=user_id,
        batch_size=50,
        max_attempts=2,
        retry_delay_s=0,
    )
    assert report.status == "unavailable"
    assert report.enriched == 0
