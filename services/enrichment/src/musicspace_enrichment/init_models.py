"""New-user initialisation: enrich the user's tracks, then train m1, the m2 user SVM and m3.

Every step is reported; a peer that is down or not ready is a step status, never an error.
Repeating it does no duplicate work: enriched tracks are not selected again and a training is
skipped when the peer's model is newer than the user's data.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from musicspace_enrichment import repository as repo
from musicspace_enrichment.clients import Peers, call_peer
from musicspace_enrichment.enrich import enrich_user_tracks, enrichment_step
from musicspace_enrichment.schemas import InitModelsResponse, StepReport
from musicspace_enrichment.settings import Settings
from musicspace_enrichment.steps import M2_SVM, M3, train
from musicspace_shared.errors import NotFound

OK_STATUSES = ("ok", "skipped")


async def init_models(
    *, engine: AsyncEngine, peers: Peers, settings: Settings, user_id: int
) -> InitModelsResponse:
    """Enrich, then train the user's models; 404 (NotFound) for an unknown user."""
    async with engine.connect() as conn:
        if not await repo.user_exists(conn, user_id):
            raise NotFound(f"user {user_id} not found", user_id=user_id)
    enrichment, m1 = await enrich_user_tracks(
        engine=engine,
        peers=peers,
        user_id=user_id,
        batch_size=settings.batch_size,
        max_attempts=settings.max_item_attempts,
        retry_delay_s=settings.item_retry_delay_s,
    )
    # m2 and m3 are separate services: train them side by side (m1 already ran after enrichment).
    m2_svm, m3 = await asyncio.gather(
        train(M2_SVM, engine=engine, peers=peers, user_id=user_id),
        train(M3, engine=engine, peers=peers, user_id=user_id),
    )
    steps = [enrichment_step(enrichment), *(s for s in (m1, m2_svm, m3) if s is not None)]
    if settings.notify_llm and enrichment.enriched_ids:
        steps.append(await sync_llm(peers=peers, admin_key=settings.admin_key))
    # The index refresh is a courtesy (llm also syncs on its own): it does not decide "ok".
    required = [s for s in steps if s.name != "llm_sync"]
    return InitModelsResponse(
        user_id=user_id, ok=all(s.status in OK_STATUSES for s in required), steps=steps
    )


async def sync_llm(*, peers: Peers, admin_key: str | None) -> StepReport:
    """Ask llm to upsert the tracks changed since its last sync (their features just changed).

    llm queues the sync and answers at once; one try only (the client has no retries): a
    missed request costs at most one periodic sync interval, a retried one costs llm work."""
    # The admin key replaces the client's app credential: index sync is an ops route.
    headers = {"Authorization": f"Bearer {admin_key}"} if admin_key else {}
    outcome = await call_peer(peers.llm, "POST", "/api/llm/index/sync", headers=headers)
    return StepReport(
        name="llm_sync",
        status=outcome.status,  # type: ignore[arg-type]
        detail=outcome.detail,
        http_status=outcome.http_status,
        result=outcome.body,
    )
