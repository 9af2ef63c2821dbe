"""The `blend` row of `musicspace eval playlists`: the service's fusion over the models'
in-process rankings for the same users, with the service's settings (RECOMMEND_*).

Unlike m1, m2 and m3 it trains nothing: the eval hands it the rankings it already computed.
"""

from __future__ import annotations

from collections.abc import Mapping

from musicspace_recommend.fusion import fuse
from musicspace_recommend.settings import TASTE_MODELS, Settings

NEEDS = TASTE_MODELS  # the rankings blend_for_eval reads


def blend_for_eval(
    rankings: Mapping[str, Mapping[str, list[str]]], *, k: int, settings: Settings | None = None
) -> dict[str, list[str]]:
    """{user: top-k track ids} fused from {model: {user: ranking}}, as the blend arm would
    answer: RRF of each model's top `depth` (RECOMMEND_DEPTH), or the one model
    RECOMMEND_BLEND_METHOD names."""
    settings = settings or Settings()
    if settings.blend_method != "rrf":
        return {u: list(r[:k]) for u, r in rankings[settings.blend_method].items()}
    users = sorted({user for ranking in rankings.values() for user in ranking})
    weights = {m: settings.weight(m) for m in rankings}
    out: dict[str, list[str]] = {}
    for user in users:
        lists = {m: rankings[m].get(user, []) for m in rankings}
        fused = fuse(lists, k=settings.rrf_k, weights=weights, depth=settings.depth)
        out[user] = [f.track_id for f in fused[:k]]
    return out
