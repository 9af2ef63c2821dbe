"""One answer of /api/recommend: plan, ask the models in parallel, fuse, fall back, measure.

Guarantees: an answer never waits for a model longer than that model's deadline (plus one
fallback round when the arm's own model gives nothing); a model that is down, not ready,
slow, refusing or empty is left out and named in `outcomes` with the reason; when no model
contributes, the popular-and-new lists answer (source `popular`). Each model is asked with the
request's filters, exclude, exclude_owned and max_per_artist; the fused (or popular) list then
goes through the shared steps and is paged with the shared cursor (musicspace_recommend.paging),
so `exclude`, the user's own tracks (unless exclude_owned is false) and tracks that fail the
filters are never returned. Every answer carries a fresh recommendation id naming its
source and the user's arm, and is counted in musicspace_recommendations_total.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from musicspace_recommend import paging, repository
from musicspace_recommend.arms import assign
from musicspace_recommend.fusion import Fused, fuse
from musicspace_recommend.peers import ModelAnswer, ask
from musicspace_recommend.planning import Plan, asks_llm, plan
from musicspace_recommend.runtime import Runtime
from musicspace_recommend.schemas import (
    ModelOutcome,
    RecommendItem,
    RecommendRequest,
    RecommendResponse,
)
from musicspace_recommend.settings import MODELS, Settings
from musicspace_shared.errors import NotFound
from musicspace_shared.logs import log_fields
from musicspace_shared.recommendation_ids import new_id

ROUTE = "/api/recommend"
logger = logging.getLogger("musicspace.recommend")


def _selection(body: RecommendRequest) -> dict[str, Any]:
    """What each model is asked to honour itself, so its depth goes to tracks that pass."""
    return body.model_dump(
        include={"filters", "exclude", "exclude_owned", "max_per_artist"}, exclude_none=True
    )


async def _ask_all(
    models: list[str], runtime: Runtime, settings: Settings, body: RecommendRequest, depth: int
) -> dict[str, ModelAnswer]:
    answers = await asyncio.gather(
        *(
            ask(
                runtime.clients[model],
                model,
                user_id=body.user_id,
                limit=depth,
                deadline_s=settings.deadline_s(model),
                query=body.query,
                selection=_selection(body),
            )
            for model in models
        )
    )
    return {answer.model: answer for answer in answers}


async def _gather_answers(
    the_plan: Plan, runtime: Runtime, settings: Settings, body: RecommendRequest, depth: int
) -> dict[str, ModelAnswer]:
    """Round one: the primary models (the fallback ones when there is none) and llm for a
    query; round two, only when no primary model contributed: the fallback models."""
    first = the_plan.primary or the_plan.fallback
    extra = ["llm"] if asks_llm(the_plan) else []
    answers = await _ask_all([*first, *extra], runtime, settings, body, depth)
    later = the_plan.fallback if the_plan.primary else []
    if later and not any(answers[m].status == "contributed" for m in the_plan.primary):
        answers |= await _ask_all(later, runtime, settings, body, depth)
    else:
        for model in later:
            lead = ", ".join(the_plan.primary)
            the_plan.not_asked[model] = f"asked only when {lead} gives nothing"
    return answers


def _outcomes(answers: dict[str, ModelAnswer], the_plan: Plan) -> list[ModelOutcome]:
    outcomes = []
    for model in MODELS:
        answer = answers.get(model)
        if answer is None:
            outcomes.append(
                ModelOutcome(model=model, status="not_asked", detail=the_plan.not_asked.get(model))
            )
        else:
            outcomes.append(
                ModelOutcome(
                    model=model,
                    status=answer.status,  # type: ignore[arg-type]
                    detail=answer.detail,
                    http_status=answer.http_status,
                    elapsed_ms=answer.elapsed_ms,
                    items=len(answer.tracks),
                )
            )
    return outcomes


def _fused(
    answers: dict[str, ModelAnswer], settings: Settings, body: RecommendRequest
) -> tuple[list[str], list[Fused], dict[str, Any]]:
    """The models that contributed, the fused list (best first) and each track's details."""
    rankings = {
        m: [t.track_id for t in a.tracks] for m, a in answers.items() if a.status == "contributed"
    }
    models = [m for m in MODELS if m in rankings]
    fused = fuse(
        {m: rankings[m] for m in models},
        k=settings.rrf_k,
        weights={m: settings.weight(m) for m in models},
        restrict_to="llm" if body.query and "llm" in rankings else None,
    )
    meta: dict[str, Any] = {}
    for model in models:
        for track in answers[model].tracks:
            meta.setdefault(track.track_id, track)
    return models, fused, meta


def _item(fused: Fused, track: Any, reason: str | None = None) -> RecommendItem:
    return RecommendItem(
        track_id=fused.track_id,
        title=getattr(track, "title", None),
        artist=getattr(track, "artist", None),
        score=round(fused.score, 6),
        ranks=fused.ranks,
        reason=reason,
    )


async def recommend(
    *,
    session: AsyncSession,
    runtime: Runtime,
    settings: Settings,
    metrics: Any,
    body: RecommendRequest,
) -> RecommendResponse:
    data = await repository.user_data(session, body.user_id)
    if data is None:
        raise NotFound(f"user {body.user_id} not found")
    arm = assign(body.user_id, runtime.arms, settings.arm_salt)
    the_plan = plan(arm.name, data, settings, query=body.query is not None)
    paging.first_offset(body)  # a foreign cursor is refused before any model is asked
    depth = settings.depth  # fixed, whatever the page: see RecommendRequest
    answers = await _gather_answers(the_plan, runtime, settings, body, depth)
    owned: set[str] = set()
    if body.exclude_owned and data.library:
        owned = await repository.owned_tracks(session, body.user_id)
    models, fused, meta = _fused(answers, settings, body)
    reasons: dict[str, str] = {}
    if fused:
        source = "blend" if len(models) > 1 else models[0]
    else:
        source, models = "popular", []
        cold = await runtime.popular.get(session)
        fused, meta, reasons = cold.items, cold.tracks, cold.reasons
    version = f"{source}|{arm.name}|{','.join(models)}|{depth}|{settings.rrf_k:g}"
    artists = [getattr(meta.get(f.track_id), "artist", None) for f in fused]
    page = await paging.page_of(
        session, body, [f.track_id for f in fused], artists, owned=owned, version=version
    )
    items = [
        _item(fused[i], meta.get(fused[i].track_id), reasons.get(fused[i].track_id))
        for i in page.positions.tolist()
    ]
    outcomes = _outcomes(answers, the_plan)
    for outcome in outcomes:
        if outcome.status != "not_asked":
            metrics.count(f"{outcome.model}_{outcome.status}")
    metrics.served(source=source, route=ROUTE, arm=arm.name)
    logger.info(
        "recommend",
        extra=log_fields(
            arm=arm.name,
            source=source,
            models=",".join(models),
            failed=",".join(
                f"{o.model}:{o.status}"
                for o in outcomes
                if o.status not in ("contributed", "not_asked")
            ),
        ),
    )
    return RecommendResponse(
        user_id=body.user_id,
        recommendation_id=new_id(source, arm.name),
        arm=arm.name,
        source=source,  # type: ignore[arg-type]
        models=models,
        next_cursor=page.next_cursor,
        outcomes=outcomes,
        items=items,
    )
