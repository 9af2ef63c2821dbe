"""Which models an answer asks, from the user's arm and data (before any call is made).

Fit: m1 and m2 rank from the user's library (PMS tracks), so they need one; m3 learns from the
library and from plays, likes and skips, so it needs either; llm needs a query. A model with
weight 0 is never asked. The arm's strategy then picks:
- blend with RECOMMEND_BLEND_METHOD=rrf: every fitting model, fused;
- blend with a model name, or an m1/m2/m3 arm: that model first; the other fitting models
  only when it gives nothing (down, slow, empty), fused;
- popular: no model (the popular-and-new lists).
A query adds llm in every arm: the user asked for something.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from musicspace_recommend.repository import UserData
from musicspace_recommend.settings import TASTE_MODELS, Settings


@dataclass
class Plan:
    primary: list[str]  # asked first
    fallback: list[str]  # asked when no primary model contributes (at once if none is primary)
    not_asked: dict[str, str] = field(default_factory=dict)  # model -> why


def unfit_reason(model: str, data: UserData) -> str | None:
    """Why `model` cannot rank for a user with `data`, or None if it can."""
    if model in ("m1", "m2") and data.library == 0:
        return f"the user has no library ({model} ranks from the user's own tracks)"
    if model == "m3" and data.library == 0 and data.interactions == 0:
        return "the user has no library and no plays, likes or skips"
    return None


def plan(strategy: str, data: UserData, settings: Settings, *, query: bool) -> Plan:
    fitting: list[str] = []
    not_asked: dict[str, str] = {}
    for model in TASTE_MODELS:
        reason = unfit_reason(model, data)
        if reason is None and settings.weight(model) == 0:
            reason = f"weight 0 (RECOMMEND_{model.upper()}_WEIGHT)"
        if reason is None:
            fitting.append(model)
        else:
            not_asked[model] = reason
    if not query:
        not_asked["llm"] = "no query"
    elif settings.llm_weight == 0:
        not_asked["llm"] = "weight 0 (RECOMMEND_LLM_WEIGHT)"
    if strategy == "popular":
        for model in fitting:
            not_asked[model] = "the user's arm serves popular and new tracks"
        return Plan([], [], not_asked)
    lead = strategy if strategy != "blend" else settings.blend_method
    if lead == "rrf":
        return Plan(fitting, [], not_asked)
    primary = [lead] if lead in fitting else []
    return Plan(primary, [m for m in fitting if m != lead], not_asked)


def asks_llm(plan: Plan) -> bool:
    return "llm" not in plan.not_asked
