"""Enrichment itself: tracks without features -> m2 predict-audio -> one set-based write.

`predict_rows` is shared by the per-user flow and the bulk job: it isolates bad items (a batch
m2 rejects is split in halves until the culprit is alone) and gives each item a bounded number
of attempts. What to do when m2 is down is the caller's choice (`call`): the per-user flow
reports it, the bulk job waits with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from musicspace_enrichment import repository as repo
from musicspace_enrichment import steps
from musicspace_enrichment.clients import M2Client, Peers, PredictBatch
from musicspace_enrichment.db_retry import retry_on_deadlock
from musicspace_enrichment.schemas import StepReport
from musicspace_shared.db.tables import utcnow
from musicspace_shared.http import PeerRejected, PeerUnavailable
from musicspace_shared.logs import log_fields

logger = logging.getLogger("musicspace.enrichment")

PredictCall = Callable[[list[dict[str, Any]]], Awaitable[PredictBatch]]


@dataclass
class BatchOutcome:
    """The predictions of one batch, and the items given up on."""

    rows: list[repo.TrackRow]
    ok: list[tuple[str, tuple[float, ...]]] = field(default_factory=list)
    failures: list[tuple[str, int, str]] = field(
        default_factory=list
    )  # (track_id, attempts, error)
    model_version: str = ""

    @property
    def last_id(self) -> str:
        return self.rows[-1].track_id


async def predict_rows(
    rows: Sequence[repo.TrackRow],
    *,
    call: PredictCall,
    max_attempts: int,
    retry_delay_s: float,
) -> BatchOutcome:
    """Predict every row; an item fails only after max_attempts tries (PeerUnavailable propagates)."""
    outcome = BatchOutcome(rows=list(rows))
    attempts: dict[str, int] = {}
    last_error: dict[str, str] = {}
    queue: list[list[repo.TrackRow]] = [list(rows)] if rows else []
    retry: list[repo.TrackRow] = []

    def miss(row: repo.TrackRow, error: str) -> None:
        attempts[row.track_id] = attempts.get(row.track_id, 0) + 1
        last_error[row.track_id] = error
        if attempts[row.track_id] >= max_attempts:
            outcome.failures.append((row.track_id, attempts[row.track_id], error))
        else:
            retry.append(row)

    while queue or retry:
        if not queue:
            # Items that missed go again together, after a short pause (a transient m2 hiccup).
            queue, retry = [retry], []
            await asyncio.sleep(retry_delay_s)
        group = queue.pop(0)
        try:
            batch = await call([row.predict_item() for row in group])
        except PeerRejected as exc:
            if len(group) > 1:
                middle = len(group) // 2
                queue[:0] = [group[:middle], group[middle:]]
            else:
                miss(group[0], str(exc))
            continue
        outcome.model_version = batch.model_version or outcome.model_version
        for row, prediction in zip(group, batch.predictions, strict=True):
            if prediction.values is not None:
                outcome.ok.append((row.track_id, prediction.values))
            else:
                miss(row, prediction.error or "no prediction")
    return outcome


async def write_outcome(engine: AsyncEngine, outcome: BatchOutcome) -> int:
    """Write one batch's predictions in one transaction; returns the tracks enriched."""
    if not outcome.ok:
        return 0

    async def attempt() -> int:
        async with engine.begin() as conn:
            return await repo.write_predictions(
                conn,
                outcome.ok,
                model_version=outcome.model_version,
                predicted_at=utcnow(),
            )

    return await retry_on_deadlock(attempt)


@dataclass
class UserEnrichment:
    """What enrich_user_tracks did for one user."""

    user_id: int
    status: str  # ok | skipped (nothing lacked features) | unavailable (m2 down) | failed
    pms_tracks: int = 0
    lacking: int = 0
    enriched: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    model_version: str | None = None
    detail: str | None = None
    enriched_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pms_tracks": self.pms_tracks,
            "lacking": self.lacking,
            "enriched": self.enriched,
            "failed": self.failed,
            "model_version": self.model_version,
        }


async def enrich_tracks_of_user(
    *,
    engine: AsyncEngine,
    m2: M2Client,
    user_id: int,
    batch_size: int,
    max_attempts: int,
    retry_delay_s: float,
) -> UserEnrichment:
    """Predict and write the features a user's PMS tracks lack (m1 training is separate: steps.M1)."""
    async with engine.connect() as conn:
        pms, lacking = await repo.user_track_counts(conn, user_id)
    report = UserEnrichment(user_id=user_id, status="ok", pms_tracks=pms, lacking=len(lacking))
    if not lacking:
        report.status, report.detail = "skipped", "no PMS track lacks features"
        return report
    for start in range(0, len(lacking), batch_size):
        rows = lacking[start : start + batch_size]
        try:
            outcome = await predict_rows(
                rows, call=m2.predict, max_attempts=max_attempts, retry_delay_s=retry_delay_s
            )
        except PeerUnavailable as exc:
            # m2 answering 503 is up but not ready (no model yet); otherwise it is down.
            report.status = "not_ready" if exc.not_ready else "unavailable"
            report.detail = exc.detail
            break
        report.model_version = outcome.model_version or report.model_version
        written = await write_outcome(engine, outcome)
        report.enriched += written
        report.enriched_ids.extend(tid for tid, _ in outcome.ok)
        report.failed.extend(
            {"track_id": t, "attempts": n, "error": e} for t, n, e in outcome.failures
        )
    if report.status == "ok" and report.failed and not report.enriched:
        report.status, report.detail = (
            "failed",
            f"m2 could not predict {len(report.failed)} track(s)",
        )
    logger.info(
        "user enriched",
        extra=log_fields(
            user_id=user_id,
            enriched=report.enriched,
            failed=len(report.failed),
            status=report.status,
        ),
    )
    return report


async def enrich_user_tracks(
    *,
    engine: AsyncEngine,
    peers: Peers,
    user_id: int,
    batch_size: int = 1000,
    max_attempts: int = 3,
    retry_delay_s: float = 0.5,
    train: bool = True,
) -> tuple[UserEnrichment, StepReport | None]:
    """The user's PMS tracks without features -> m2 -> DB, then m1 training; both results returned."""
    enrichment = await enrich_tracks_of_user(
        engine=engine,
        m2=peers.predictor,
        user_id=user_id,
        batch_size=batch_size,
        max_attempts=max_attempts,
        retry_delay_s=retry_delay_s,
    )
    m1 = await steps.train(steps.M1, engine=engine, peers=peers, user_id=user_id) if train else None
    return enrichment, m1


def enrichment_step(report: UserEnrichment) -> StepReport:
    """The enrichment as an init-models step."""
    return StepReport(
        name="enrich", status=report.status, detail=report.detail, result=report.as_dict()
    )  # type: ignore[arg-type]
