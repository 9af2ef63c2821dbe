"""Per-user model trainings over HTTP (m1, the m2 user SVM, m3), skipped when nothing changed.

"Nothing changed" = the peer's newest model for the user was trained after the newest change
the model depends on (PMS list, interactions, the tracks' features). When the peer does not
say when it trained, the training is called: the peers' trainings are idempotent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from musicspace_enrichment import repository as repo
from musicspace_enrichment.clients import PeerOutcome, Peers, call_peer
from musicspace_enrichment.schemas import StepReport
from musicspace_shared import registry
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


@dataclass(frozen=True)
class Training:
    """One peer's per-user training: the route that trains (POST {"user_id", **payload}) and,
    when the peer has one, the route that says when it last trained (`trained_at`)."""

    name: str  # the init-models step
    peer: str  # a registered service, and the Peers client that calls it
    path: str
    payload: dict[str, Any] = field(default_factory=dict)
    status_path: str | None = None  # with {user_id}

    @property
    def family(self) -> str:
        """The model family its trainings are recorded under (the peer's model volume)."""
        family = registry.get(self.peer).model_family
        assert family, f"{self.peer} keeps no models"
        return family


M1 = Training("m1", "m1", "/api/m1/train", status_path="/api/m1/status/{user_id}")
# m2 has no train route: its recommend fits the user's SVM on demand.
M2_SVM = Training("m2_svm", "m2", "/api/m2/recommend", payload={"limit": 1})
M3 = Training("m3", "m3", "/api/m3/train")


async def _peer_trained_at(training: Training, peers: Peers, user_id: int) -> datetime | None:
    if training.status_path is None:
        return None
    path = training.status_path.format(user_id=user_id)
    outcome = await call_peer(getattr(peers, training.peer), "GET", path)
    body = outcome.body or {}
    return _parse_time(body.get("trained_at")) if outcome.status == "ok" else None


async def train(
    training: Training,
    *,
    engine: AsyncEngine,
    peers: Peers,
    user_id: int,
    force: bool = False,
) -> StepReport:
    """Call the peer's training for the user, unless its model is newer than the user's data."""
    if not force:
        async with engine.connect() as conn:
            changed = await repo.user_data_changed_at(conn, user_id)
            trained = await repo.model_trained_at(conn, family=training.family, user_id=user_id)
        stated = await _peer_trained_at(training, peers, user_id)
        trained = max(filter(None, (trained, stated)), default=None)
        if trained is not None and changed is not None and _not_before(trained, changed):
            return StepReport(
                name=training.name,
                status="skipped",
                detail=f"model trained at {trained.isoformat()} after the last data change ({changed.isoformat()})",
            )
    outcome: PeerOutcome = await call_peer(
        getattr(peers, training.peer),
        "POST",
        training.path,
        {"user_id": user_id, **training.payload},
    )
    report = _report(training.name, outcome)
    logger.info(
        "train step", extra=log_fields(step=training.name, user_id=user_id, status=report.status)
    )
    return report
