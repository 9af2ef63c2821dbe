"""The bulk job in-process against a fake m2: completion, single active job, outage, failures, takeover."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from musicspace_enrichment.clients import M2Client
from musicspace_enrichment.jobs import BulkEnrichment
from musicspace_enrichment.schemas import JobStatus
from musicspace_enrichment.settings import Settings
from musicspace_shared.http import ServiceClient
from services.enrichment.tests.fakes import FakeM2
from services.enrichment.tests.helpers import (
    audit_counts,
    install_audit,
    lacking_ids,
    predicted_ids,
)


def _settings(url: str, **overrides: object) -> Settings:
    values = dict(
        database_url=url,
        batch_size=20,
        concurrency=2,
        lease_s=1.0,
        heartbeat_s=0.25,
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
        item_retry_delay_s=0.0,
        max_item_attempts=2,
        pause_between_batches_s=0.02,
    )
    return Settings(**(values | overrides))


def _runner(engine, fake: FakeM2, url: str, **overrides: object) -> BulkEnrichment:
    m2 = M2Client(ServiceClient("m2", "http://m2.test", retries=0, transport=fake.transport()))
    return BulkEnrichment(engine=engine, m2=m2, settings=_settings(url, **overrides))


async def _until(
    check: Callable[[JobStatus], bool], runner: BulkEnrichment, timeout_s: float = 30.0
) -> JobStatus:
    deadline = time.monotonic() + timeout_s
    while True:
        status = await runner.status()
        if check(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met; last status {status}")
        await asyncio.sleep(0.03)


@pytest.fixture
async def audited(db):
    await install_audit(db)
    return db


async def test_enrich_all_enriches_every_lacking_track_exactly_once(audited, enrich_db_url):
    before = await lacking_ids(audited)
    assert before, "the demo subset has tracks without features"
    runner = _runner(audited, FakeM2(), enrich_db_url)
    job_id, created = await runner.start()
    await runner.wait()
    status = await runner.status()
    assert created and status.job_id == job_id
    assert status.state == "succeeded"
    assert (status.total, status.done, status.failed, status.remaining) == (
        len(before),
        len(before),
        0,
        0,
    )
    assert await lacking_ids(audited) == []
    assert await predicted_ids(audited) == before
    assert await audit_counts(audited) == {track_id: 1 for track_id in before}


async def test_enrich_status_times_keep_microseconds_and_give_the_rate(db, enrich_db_url):
    runner = _runner(db, FakeM2(), enrich_db_url)
    await runner.start()
    await runner.wait()
    # Read back by a process that did not run the job: everything comes from the job row.
    status = await _runner(db, FakeM2(), enrich_db_url).status()
    assert status.state == "succeeded" and status.done > 0
    assert status.started_at and status.finished_at
    # MariaDB's plain DATETIME would drop the fraction (a sub-second job would have no rate).
    assert (status.started_at.microsecond, status.finished_at.microsecond) != (0, 0)
    elapsed = (status.finished_at - status.started_at).total_seconds()
    assert elapsed > 0
    assert status.rate_per_s == round(status.done / elapsed, 2)
    assert status.eta_s == 0.0


async def test_enrich_all_sends_the_next_batch_to_m2_before_writing_one(
    db, enrich_db_url, monkeypatch
):
    from musicspace_enrichment import repository

    reads: list[int] = []
    reads_before_write: list[int] = []
    read, write = repository.lacking_batch, repository.write_predictions

    async def counting_read(*args, **kwargs):
        rows = await read(*args, **kwargs)
        reads.append(len(rows))
        return rows

    async def noting_write(*args, **kwargs):
        reads_before_write.append(len(reads))
        return await write(*args, **kwargs)

    monkeypatch.setattr(repository, "lacking_batch", counting_read)
    monkeypatch.setattr(repository, "write_predictions", noting_write)
    runner = _runner(db, FakeM2(), enrich_db_url, concurrency=2, pause_between_batches_s=0.0)
    await runner.start()
    await runner.wait()
    assert (await runner.status()).state == "succeeded"
    assert len(reads_before_write) >= 3, "the demo subset needs several batches of 20"
    # Two calls out, the first answer in: the third batch goes to m2 before the first write.
    assert reads_before_write[0] == 3


async def test_enrich_all_while_running_returns_the_running_job(db, enrich_db_url):
    runner = _runner(db, FakeM2(), enrich_db_url, pause_between_batches_s=0.2)
    job_id, created = await runner.start()
    running = await _until(lambda s: s.done > 0, runner)
    assert running.state == "running" and running.owner_alive
    assert running.rate_per_s and running.rate_per_s > 0
    assert running.eta_s is not None and running.remaining == running.total - running.done
    again, created_again = await runner.start()
    assert (created, created_again) == (True, False)
    assert again == job_id
    other_process = _runner(db, FakeM2(), enrich_db_url)
    assert await other_process.start() == (job_id, False)
    assert not other_process.busy  # the owner is alive: no takeover
    await runner.shutdown()


async def test_enrich_all_waits_while_m2_is_down_and_resumes(db, enrich_db_url):
    before = await lacking_ids(db)
    fake = FakeM2()
    runner = _runner(db, fake, enrich_db_url, pause_between_batches_s=0.1)
    await runner.start()
    await _until(lambda s: s.done > 0, runner)
    fake.down = True
    waiting = await _until(lambda s: s.state == "waiting", runner)
    assert waiting.waiting and "m2" in (waiting.waiting_reason or "")
    fake.down = False
    await runner.wait()
    status = await runner.status()
    assert status.state == "succeeded" and status.failed == 0
    assert status.done == len(before)
    assert await lacking_ids(db) == []


class DownAfterFirstCall(FakeM2):
    """Answers one call, then is down until `down` is cleared."""

    def handler(self, request):
        response = super().handler(request)
        self.down = self.calls == 1
        return response


async def test_a_batch_written_while_m2_is_down_keeps_the_waiting_reason(
    db, enrich_db_url, monkeypatch
):
    fake = DownAfterFirstCall()
    runner = _runner(db, fake, enrich_db_url, concurrency=2, pause_between_batches_s=0.0)
    record_waiting = runner._mark

    async def slow_to_record_waiting(job_id, **values):
        # The waiting call's own status update lands late, after the first batch's commit.
        if values.get("state") == "waiting":
            await asyncio.sleep(0.5)
        await record_waiting(job_id, **values)

    monkeypatch.setattr(runner, "_mark", slow_to_record_waiting)
    await runner.start()
    waiting = await _until(lambda s: s.state == "waiting", runner)
    assert waiting.done > 0, "the first batch was committed while the second waited"
    assert "waiting for m2" in (waiting.waiting_reason or "")
    fake.down = False
    await runner.wait()
    assert (await runner.status()).state == "succeeded"


async def test_enrich_all_lists_items_that_fail_after_bounded_attempts(db, enrich_db_url):
    async with db.connect() as conn:
        bad = (
            (
                await conn.execute(
                    sa.text(
                        "SELECT track_id FROM track WHERE features_source IS NULL ORDER BY track_id LIMIT 2"
                    )
                )
            )
            .scalars()
            .all()
        )
    fake = FakeM2(bad_ids=set(bad))
    runner = _runner(db, fake, enrich_db_url, max_item_attempts=3)
    await runner.start()
    await runner.wait()
    status = await runner.status()
    assert status.state == "succeeded"
    assert status.failed == len(status.failures) == 2
    assert all(f.attempts == 3 and f.error == "cannot predict" for f in status.failures)
    assert (
        sorted(await lacking_ids(db)) == sorted(f.track_id for f in status.failures) == sorted(bad)
    )


async def test_enrich_all_crashed_owner_is_taken_over_and_each_track_enriched_once(
    audited, enrich_db_url
):
    before = await lacking_ids(audited)
    crashed = _runner(audited, FakeM2(), enrich_db_url, pause_between_batches_s=0.1)
    job_id, _ = await crashed.start()
    await _until(lambda s: s.done >= 40, crashed)
    crashed._task.cancel()  # a crash: no lease release, the heartbeat just stops
    await asyncio.gather(crashed._task, return_exceptions=True)
    survivor = _runner(audited, FakeM2(), enrich_db_url)
    survivor.watch()
    await _until(lambda s: s.state == "succeeded", survivor)
    status = await survivor.status(include_owner=True)
    assert status.job_id == job_id and status.owner == survivor.owner
    assert status.done == len(before)
    assert await audit_counts(audited) == {track_id: 1 for track_id in before}
    await survivor.shutdown()


async def test_enrich_all_graceful_shutdown_hands_the_job_over_at_once(db, enrich_db_url):
    first = _runner(db, FakeM2(), enrich_db_url, pause_between_batches_s=0.1, lease_s=600.0)
    job_id, _ = await first.start()
    await _until(lambda s: s.done > 0, first)
    await first.shutdown()
    handed = await first.status(include_owner=True)
    assert handed.state == "queued" and handed.owner is None
    second = _runner(db, FakeM2(), enrich_db_url, lease_s=600.0)
    assert await second.start() == (job_id, False)
    await second.wait()
    assert (await second.status()).state == "succeeded"
    assert await lacking_ids(db) == []


async def test_enrich_status_without_any_job_is_idle(db, enrich_db_url):
    status = await _runner(db, FakeM2(), enrich_db_url).status()
    assert status.state == "idle" and status.job_id is None


async def test_enrich_all_on_sqlite_enriches_every_lacking_track(sqlite_url):
    from musicspace_shared.db.engine import make_engine, make_sessionmaker
    from musicspace_shared.features import FEATURES
    from tests.factories import create_track

    engine = make_engine(url=sqlite_url)
    async with make_sessionmaker(engine)() as session:
        blank = {name: None for name in FEATURES} | {"features_source": None}
        for _ in range(45):
            await create_track(session, **blank)
        await create_track(session)  # measured: must stay as it is
    runner = _runner(engine, FakeM2(), sqlite_url, pause_between_batches_s=0.0)
    await runner.start()
    await runner.wait()
    status = await runner.status()
    assert status.state == "succeeded" and status.failed == 0 and status.done >= 45
    assert await lacking_ids(engine) == []
    async with engine.connect() as conn:
        sources = (
            (await conn.execute(sa.text("SELECT DISTINCT features_source FROM track")))
            .scalars()
            .all()
        )
    assert set(sources) == {"measured", "predicted"}
    await engine.dispose()
