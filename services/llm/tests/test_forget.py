"""Erasure in llm: it serves the forget route (admin key) although it keeps no per-user files
or answers; the route says so, and a recommend for the user still holds nothing afterwards."""

from __future__ import annotations

import httpx
from prometheus_client import generate_latest

from .helpers import ADMIN_KEY


async def test_forget_route_answers_for_llm_with_nothing_held(
    client: httpx.AsyncClient, app
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    refused = await client.delete("/admin/users/5")  # the app credential: not an ops caller
    report = await client.delete("/admin/users/5", headers=admin)
    assert refused.status_code == 403
    assert report.status_code == 200, report.text
    body = report.json()
    assert (body["service"], body["files"], body["cache_entries"]) == ("llm", [], 0)
    assert 'user_id="5"' not in generate_latest(app.state.metrics.registry).decode()
