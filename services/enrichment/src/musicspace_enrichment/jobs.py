"""The bulk enrichment job: durable in the `job` table, resumable, exactly once per track.

- Durable: the job row holds state, counters and a checkpoint (the last track_id written);
  tracks are processed in track_id order, so the checkpoint is everything needed to resume.
- Exactly once: each batch is written in ONE transaction that (1) updates only tracks still
  lacking features and (2) advances the checkpoint, conditional on this process still holding
  the lease. A crash loses at most uncommitted work; a replay matches no row twice.
- Lease: the owner heartbeats the row; a job whose heartbeat is older than `lease_s` is
  taken over (compare-and-set on owner + heartbeat) by any enrichment process' watchdog.
- m2 down: the batch waits with exponential backoff (state "waiting" + the reason in
  last_error) and resumes when m2 answers; per-item errors get `max_item_attempts` tries,
  then the item is listed in job_item_failure and the job moves on.
- Speed: a read-ahead pipeline keeps `concurrency` predict-audio calls in flight, also while
  the oldest answered batch is written with one set-based UPDATE.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from musicspace_enrichment import repository as repo
from musicspace_enrichment.clients import M2Client, PredictBatch
from musicspace_enrichment.db_retry import retry_on_deadlock
from musicspace_enrichment.enrich import BatchOutcome, predict_rows
from musicspace_enrichment.schemas import ItemFailure, JobStatus
from musicspace_enrichment.settings import Settings
from musicspace_shared.db.tables import utcnow
from musicspace_shared.errors import Conflict
from musicspace_shared.http import PeerUnavailable
from musicspace_shared.logs import log_fields, request_id_var
from musicspace_shared.metrics import ServiceMetrics

logger = logging.getLogger("musicspace.enrichment.job")

RATE_WINDOW_S = 60.0


class LeaseLost(Exception):
    """Another process owns the job now: stop without writing anything more."""


def _db_trouble(exc: BaseException) -> bool:
    """A DB connection problem (worth waiting out), not a bug in a statement."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def new_owner_id() -> str:
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class BulkEnrichment:
    """The enrich-all job as seen from one enrichment process."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        m2: M2Client,
        settings: Settings,
        metrics: ServiceMetrics | None = None,
        owner: str | None = None,
        on_finished: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self.engine = engine
        self.m2 = m2
        self.settings = settings
        self.metrics = metrics
        self.owner = owner or new_owner_id()
        # e.g. tell llm to re-index the enriched tracks: called only when this run wrote some.
        self.on_finished = on_finished
        self._written = 0  # tracks this process wrote in its current run
        self._task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._job_id: int | None = None
        self._start_lock = asyncio.Lock()
        self._waiting = 0  # predict calls waiting out an m2 outage
        self._wait_reason: str | None = None  # the latest one's reason, for the job row
        self._lease_lost = False
        self._progress: deque[tuple[float, int]] = deque()  # (monotonic time, processed so far)
        self._run_started = time.monotonic()

    # ------------------------------------------------------------ public

    async def start(self) -> tuple[int | None, bool]:
        """Start the job, or return the active one: (job id, created). With no track lacking
        features no job is created (and so no index sync follows): (None, False)."""
        async with self._start_lock, self.engine.connect() as conn:
            # The named lock is held until after the commit, so two replicas cannot both
            # see "no active job" and create one each.
            locked = await repo.acquire_start_lock(conn)
            await conn.commit()  # named locks outlive transactions; end the autobegun one
            if not locked:
                raise Conflict("another enrich-all start is in progress; retry in a moment")
            try:
                async with conn.begin():
                    active = await repo.active_job(conn)
                    if active is not None:
                        job_id, created = int(active.id), False
                    elif total := await repo.count_lacking(conn):
                        job_id = await repo.create_job(conn, owner=self.owner, total=total)
                        created = True
                    else:
                        job_id, created = None, False  # nothing to enrich: no job at all
            finally:
                await repo.release_start_lock(conn)
                await conn.commit()
        if job_id is None:
            return None, False
        if created:
            logger.info("job created", extra=log_fields(job_id=job_id, owner=self.owner))
            self._spawn(job_id)
        elif not self.busy:
            await self._try_claim(job_id)
        return job_id, created

    async def status(self, *, include_owner: bool = False) -> JobStatus:
        """The latest enrich-all job, read from the DB (any replica answers the same).

        The owner (host:pid of the process holding the lease) is for admins only."""
        async with self.engine.connect() as conn:
            row = await repo.latest_job(conn)
            failures = (
                await repo.job_failures(conn, row.id, limit=self.settings.failures_listed)
                if row
                else []
            )
        if row is None:
            return JobStatus(job_id=None, state="idle")
        processed = row.done + row.failed
        remaining = max(0, row.total - processed)
        active = row.state in repo.ACTIVE_STATES
        rate = self._live_rate() if row.id == self._job_id else None
        if rate is None:
            end = row.finished_at or row.updated_at or utcnow()
            elapsed = (end - row.started_at).total_seconds() if row.started_at else 0.0
            rate = processed / elapsed if processed and elapsed > 0 else None
        eta = (remaining / rate if rate else None) if active else 0.0
        alive = bool(
            row.owner
            and row.heartbeat_at
            and row.heartbeat_at >= repo.stale_before(self.settings.lease_s)
        )
        return JobStatus(
            job_id=row.id,
            state=row.state,
            total=row.total,
            done=row.done,
            failed=row.failed,
            remaining=remaining,
            rate_per_s=round(rate, 2) if rate else None,
            eta_s=round(eta, 1) if eta is not None else None,
            waiting=row.state == "waiting",
            waiting_reason=row.last_error if row.state == "waiting" else None,
            last_error=row.last_error,
            owner=row.owner if include_owner else None,
            owner_alive=alive,
            started_at=row.started_at,
            updated_at=row.updated_at,
            heartbeat_at=row.heartbeat_at,
            finished_at=row.finished_at,
            failures=[
                ItemFailure(track_id=f.item_id, attempts=f.attempts, error=f.error)
                for f in failures
            ],
        )

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    def watch(self) -> None:
        """Start the watchdog: take over interrupted jobs (now, and whenever a lease goes stale)."""
        if self._watch_task is None:
            self._watch_task = asyncio.create_task(self._watch(), name="enrich-watchdog")

    async def wait(self) -> None:
        """Until the job this process runs (if any) ends (tests, the CLI)."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def shutdown(self) -> None:
        """Stop; an unfinished job's lease is handed back so the next process resumes at once."""
        job_id = self._job_id
        for task in (self._watch_task, self._task):
            if task is not None:
                task.cancel()
        await asyncio.gather(
            *(t for t in (self._watch_task, self._task) if t), return_exceptions=True
        )
        if job_id is not None:
            try:
                async with self.engine.begin() as conn:
                    await repo.release_job(conn, job_id, owner=self.owner)
            except Exception as exc:  # noqa: BLE001 - the lease then simply expires
                logger.warning(
                    "lease not released", extra=log_fields(job_id=job_id, error=str(exc)[:200])
                )

    # ------------------------------------------------------------ lease

    def _spawn(self, job_id: int) -> None:
        self._job_id = job_id
        self._lease_lost = False
        self._progress.clear()
        self._written = 0
        self._run_started = time.monotonic()
        self._task = asyncio.create_task(self._run(job_id), name=f"enrich-job-{job_id}")

    async def _try_claim(self, job_id: int) -> bool:
        async with self.engine.begin() as conn:
            claimed = await repo.claim_job(
                conn,
                job_id,
                owner=self.owner,
                stale_before=repo.stale_before(self.settings.lease_s),
            )
        if claimed:
            logger.info("job taken over", extra=log_fields(job_id=job_id, owner=self.owner))
            self._spawn(job_id)
        return claimed

    async def _watch(self) -> None:
        interval = min(self.settings.lease_s / 2, 5.0)
        while True:
            try:
                if not self.busy:
                    async with self.engine.connect() as conn:
                        orphans = await repo.orphaned_jobs(
                            conn, stale_before=repo.stale_before(self.settings.lease_s)
                        )
                    for job_id in orphans:
                        if await self._try_claim(job_id):
                            break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the DB may be down; look again later
                logger.warning("watchdog", extra=log_fields(error=str(exc)[:200]))
            await asyncio.sleep(interval)

    async def _heartbeat(self, job_id: int, main: asyncio.Task[Any]) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval_s)
            try:
                async with self.engine.begin() as conn:
                    held = await repo.touch_job(conn, job_id, owner=self.owner)
            except Exception as exc:  # noqa: BLE001 - keep trying; the lease may expire meanwhile
                logger.warning(
                    "heartbeat failed", extra=log_fields(job_id=job_id, error=str(exc)[:200])
                )
                continue
            if not held:
                logger.warning("lease lost", extra=log_fields(job_id=job_id, owner=self.owner))
                self._lease_lost = True
                main.cancel()
                return

    # ------------------------------------------------------------ the run

    async def _run(self, job_id: int) -> None:
        # The task copied the context of the request that started it: log under the job instead.
        request_id_var.set(f"enrich-job-{job_id}")
        me = asyncio.current_task()
        assert me is not None
        heartbeat = asyncio.create_task(self._heartbeat(job_id, me))
        delay = self.settings.backoff_initial_s
        try:
            while True:
                try:
                    await self._pipeline(job_id)
                    return
                except (OperationalError, InterfaceError, DBAPIError) as exc:
                    if not _db_trouble(exc):
                        raise
                    # The DB went away: wait, then carry on from the durable checkpoint.
                    logger.warning(
                        "db unavailable, job waits",
                        extra=log_fields(job_id=job_id, error=str(exc)[:200]),
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.settings.backoff_max_s)
        except LeaseLost:
            logger.warning("job stopped: lease lost", extra=log_fields(job_id=job_id))
        except asyncio.CancelledError:
            if not self._lease_lost:
                raise
        except Exception as exc:
            logger.exception("job failed", extra=log_fields(job_id=job_id))
            try:
                async with self.engine.begin() as conn:
                    await repo.finish_job(
                        conn,
                        job_id,
                        owner=self.owner,
                        state="failed",
                        error=f"{type(exc).__name__}: {exc}",
                    )
            except Exception:  # noqa: BLE001
                logger.exception("could not mark the job failed")
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            self._job_id = None if self._job_id == job_id else self._job_id

    async def _pipeline(self, job_id: int) -> None:
        async with self.engine.connect() as conn:
            row = await repo.get_job(conn, job_id)
        if row is None or row.owner != self.owner or row.state not in repo.ACTIVE_STATES:
            raise LeaseLost()
        cursor: str | None = row.checkpoint
        in_flight: deque[asyncio.Task[BatchOutcome]] = deque()
        exhausted = False

        async def fill() -> None:
            """Read the next batches and send them to m2 until `concurrency` calls are out."""
            nonlocal cursor, exhausted
            while not exhausted and len(in_flight) < self.settings.concurrency:
                async with self.engine.connect() as conn:
                    rows = await repo.lacking_batch(
                        conn, after=cursor, limit=self.settings.batch_size
                    )
                if not rows:
                    exhausted = True
                    return
                cursor = rows[-1].track_id
                in_flight.append(
                    asyncio.create_task(
                        predict_rows(
                            rows,
                            call=lambda items: self._predict(job_id, items),
                            max_attempts=self.settings.max_item_attempts,
                            retry_delay_s=self.settings.item_retry_delay_s,
                        )
                    )
                )

        try:
            while True:
                await fill()
                if not in_flight:
                    break
                outcome = await in_flight.popleft()
                # The next call goes out before this batch is written: m2 predicts while the
                # DB writes, instead of waiting for the write to end.
                await fill()
                await self._commit(job_id, outcome)
                if self.settings.pause_between_batches_s:
                    await asyncio.sleep(self.settings.pause_between_batches_s)
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
        async with self.engine.begin() as conn:
            if not await repo.finish_job(conn, job_id, owner=self.owner, state="succeeded"):
                raise LeaseLost()
        logger.info("job finished", extra=log_fields(job_id=job_id, written=self._written))
        if self.on_finished is not None and self._written:
            try:
                await self.on_finished()
            except Exception as exc:  # noqa: BLE001 - a courtesy call; the job is done either way
                logger.warning("after-job hook failed", extra=log_fields(error=str(exc)[:200]))

    async def _predict(self, job_id: int, items: list[dict[str, Any]]) -> PredictBatch:
        """predict-audio, waiting out an m2 outage with exponential backoff and jitter."""
        delay = self.settings.backoff_initial_s
        tries = 0
        while True:
            try:
                batch = await self.m2.predict(items)
            except PeerUnavailable as exc:
                tries += 1
                pause = delay * (0.5 + random.random() / 2)
                reason = f"waiting for m2 (try {tries}, next in {pause:.1f}s): {exc.detail}"[:1000]
                self._wait_reason = reason
                self._waiting += 1
                try:
                    await self._mark(job_id, state="waiting", last_error=reason)
                    await asyncio.sleep(pause)
                finally:
                    self._waiting -= 1
                delay = min(delay * 2, self.settings.backoff_max_s)
                continue
            if tries and not self._waiting:
                await self._mark(job_id, state="running")
            return batch

    async def _mark(self, job_id: int, **values: Any) -> None:
        try:
            async with self.engine.begin() as conn:
                held = await repo.touch_job(conn, job_id, owner=self.owner, **values)
        except Exception as exc:  # noqa: BLE001 - status is best effort; the checkpoint is what counts
            logger.warning(
                "job state not recorded", extra=log_fields(job_id=job_id, error=str(exc)[:200])
            )
            return
        if not held:
            raise LeaseLost()
        if values.get("state") == "waiting" and self.metrics is not None:
            self.metrics.count("enrichment_m2_waits")

    async def _commit(self, job_id: int, outcome: BatchOutcome) -> None:
        """Write the batch and advance the checkpoint in one transaction, only under our lease."""

        async def attempt() -> tuple[int, int]:
            async with self.engine.begin() as conn:
                written = await repo.write_predictions(
                    conn,
                    outcome.ok,
                    model_version=outcome.model_version or "unknown",
                    predicted_at=utcnow(),
                )
                added = await repo.record_failures(conn, job_id, outcome.failures)
                held = await repo.advance_checkpoint(
                    conn,
                    job_id,
                    owner=self.owner,
                    checkpoint=outcome.last_id,
                    done=len(outcome.ok),
                    failed=added,
                    state="waiting" if self._waiting else "running",
                    # A batch committed while another waits for m2: the row must say why.
                    waiting_reason=self._wait_reason if self._waiting else None,
                )
                if not held:
                    raise LeaseLost()  # rolls the batch back: the new owner writes it
                return written, added

        written, added = await retry_on_deadlock(attempt)
        self._written += written
        self._note_progress(len(outcome.ok) + added)
        if self.metrics is not None:
            self.metrics.count("tracks_enriched", written)
            if added:
                self.metrics.count("enrichment_item_failures", added)
            rate = self._live_rate()
            if rate is not None:
                self.metrics.set("enrichment_rate_per_s", rate)

    def _note_progress(self, processed: int) -> None:
        now = time.monotonic()
        total = (self._progress[-1][1] if self._progress else 0) + processed
        if not self._progress:
            self._progress.append((self._run_started, 0))
        self._progress.append((now, total))
        while len(self._progress) > 2 and now - self._progress[1][0] > RATE_WINDOW_S:
            self._progress.popleft()

    def _live_rate(self) -> float | None:
        if len(self._progress) < 2:
            return None
        (t0, n0), (t1, n1) = self._progress[0], self._progress[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else None
