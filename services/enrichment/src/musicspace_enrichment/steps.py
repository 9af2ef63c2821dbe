"""Per-user model trainings over HTTP (m1, the m2 user SVM, m3), skipped when nothing changed.

"Nothing changed" = the peer's newest model for the user was trained after the newest change
the model depends on (PMS list, interactions, the tracks' features). When the peer does not
say when it trained, the training is called: the peers' trainings are idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from musicspace_enrichment import repository as repo
from musicspace_enrichment.clients import PeerOutcome, Peers, call_peer
from musicspace_enrichment.schemas import StepReport
from musicspace_shared.logs import log_fields

logger = logging.getLogger("musicspace.enrichment")


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=repo.UTC)


def _not_before(trained: datetime, changed: datetime) -> bool:
    """trained >= changed, at the precision trained_at was stored with: the model registry
    keeps whole seconds on MariaDB, track.updated_at microseconds, so a training in the same
    second as the enrichment before it must not look older than it."""
    if trained.microsecond == 0:
        changed = changed.replace(microsecond=0)
    return trained >= changed


def _report(name: str, outcome: PeerOutcome) -> StepReport:
    return StepReport(
        name=name,
        status=outcome.status,
        detail=outcome.detail,
        http_status=outcome.http_status,
        result=outcome.body,
    )  # type: ignore[arg-type]


async def _step(
    *,
    name: str,
    family: str,
    engine: AsyncEngine,
    user_id: int,
    force: bool,
    peer_trained_at: Callable[[], Awaitable[datetime | None]] | None,
    train: Callable[[], Awaitable[PeerOutcome]],
) -> StepReport:
    if not force:
        async with engine.connect() as conn:
            changed = await repo.user_data_changed_at(conn, user_id)
            trained = await repo.model_trained_at(conn, family=family, user_id=user_id)
        if peer_trained_at is not None:
            stated = await peer_trained_at()
            trained = max(filter(None, (trained, stated)), default=None)
        if trained is not None and changed is not None and _not_before(trained, changed):
            return StepReport(
                name=name,
                status="skipped",
                detail=f"model trained at {trained.isoformat()} after the last data change ({changed.isoformat()})",
            )
    report = _report(name, await train())
    logger.info("train step", extra=log_fields(step=name, user_id=user_id, status=report.status))
    return report


async def train_m1(
    *, engine: AsyncEngine, peers: Peers, user_id: int, force: bool = False
) -> StepReport:
    """POST m1 /api/m1/train, unless m1's model is newer than the user's data."""

    async def stated() -> datetime | None:
        outcome = await call_peer(peers.m1, "GET", f"/api/m1/status/{user_id}")
        body = outcome.body or {}
        return _parse_time(body.get("trained_at")) if outcome.status == "ok" else None

    async def train() -> PeerOutcome:
        return await call_peer(peers.m1, "POST", "/api/m1/train", {"user_id": user_id})

    return await _step(
        name="m1",
        family="M1",
        engine=engine,
        user_id=user_id,
        force=force,
        peer_trained_at=stated,
        train=train,
    )


async def train_m2_svm(
    *, engine: AsyncEngine, peers: Peers, user_id: int, force: bool = False
) -> StepReport:
    """The m2 user SVM: m2 has no train route, its recommend trains the SVM on demand."""

    async def train() -> PeerOutcome:
        return await call_peer(
            peers.m2, "POST", "/api/m2/recommend", {"user_id": user_id, "limit": 1}
        )

    return await _step(
        name="m2_svm",
        family="M2",
        engine=engine,
        user_id=user_id,
        force=force,
        peer_trained_at=None,
        train=train,
    )


async def train_m3(
    *, engine: AsyncEngine, peers: Peers, user_id: int, force: bool = False
) -> StepReport:
    """POST m3 /api/m3/train for the user's fine-tuned model."""

    async def train() -> PeerOutcome:
        return await call_peer(peers.m3, "POST", "/api/m3/train", {"user_id": user_id})

    return await _step(
        name="m3",
        family="M3",
        engine=engine,
        user_id=user_id,
        force=force,
        peer_trained_at=None,
        train=train,
    )
