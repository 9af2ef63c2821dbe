"""Issue 17 items 1-2 through the real Traefik on the real services.

A user enters over HTTP only (PUT user, PUT library with catalog tracks unknown until then),
`POST /api/init-models` initialises them with no CLI step, every model service serves them,
and `DELETE /api/users/{id}` erases them: afterwards no file under any model volume, no row,
no cached answer (a second erasure finds none on any replica) and no metric series holds the
user id.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from musicspace_shared import registry
from musicspace_shared.db.engine import make_engine
from tests.credentials import as_user
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.mariadb]

USER_TABLES = {
    "user": "id",
    "user_track": "user_id",
    "interaction": "user_id",
    "interaction_event": "user_id",
    "model_record": "owner_id",
}


async def _query(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = make_engine(url=url)
    try:
        async with engine.connect() as conn:
            return [tuple(r) for r in (await conn.execute(sa.text(sql), params)).all()]
    finally:
        await engine.dispose()


def _db(stack: Stack, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    return asyncio.run(_query(stack.env["DATABASE_URL"], sql, **params))


def _rows_holding(stack: Stack, user: int) -> dict[str, int]:
    found = {}
    for table, column in USER_TABLES.items():
        n = _db(stack, f"SELECT COUNT(*) FROM `{table}` WHERE {column} = :u", u=user)[0][0]
        if n:
            found[table] = n
    return found


def _files_holding(stack: Stack, user: int) -> list[str]:
    root = stack.tmp / "models"
    return [str(p.relative_to(root)) for p in root.rglob("*") if str(user) in p.name]


def _metrics_holding(stack: Stack, user: int) -> list[str]:
    holding = []
    for name, service in stack.services.items():
        text = httpx.get(service.url + "/metrics", timeout=30).text
        holding += [f"{name}: {line}" for line in text.splitlines() if str(user) in line]
    return holding


def _library(stack: Stack) -> list[dict[str, Any]]:
    """15 catalog tracks with measured features and 2 tracks the catalog does not have yet."""
    known = _db(
        stack,
        "SELECT track_id FROM track WHERE features_source = 'measured' "
        "ORDER BY popularity DESC, track_id LIMIT 15",
    )
    tracks: list[dict[str, Any]] = [{"track_id": t, "playlist_id": "pl-e2e"} for (t,) in known]
    for title in ("Lighthouse Signals", "Paper Boats"):
        tracks.append(
            {
                "track_id": "e2e" + uuid.uuid4().hex[:19],
                "playlist_id": "pl-e2e",
                "title": title,
                "artist": "The Erasures",
                "genre": "pop",
                "subgenre": "indie poptimism",
            }
        )
    return tracks


def test_a_user_created_over_http_is_initialised_served_and_erased_everywhere(
    stack: Stack,
) -> None:
    for name in registry.names():
        stack.require(name)
    user = random.randint(7 * 10**9, 8 * 10**9)
    tracks = _library(stack)
    with stack.client(headers=stack.app) as client:
        created = client.put(f"/api/users/{user}", json={"external_ref": f"e2e-{user}"})
        assert created.status_code == 201, created.text
        put = client.put(f"/api/users/{user}/library", json={"mode": "replace", "tracks": tracks})
        assert put.status_code == 200, put.text
        assert (put.json()["inserted"], put.json()["tracks_created"]) == (17, 2)
        again = client.put(f"/api/users/{user}/library", json={"mode": "replace", "tracks": tracks})
        assert again.json()["unchanged"] == 17

        init = client.post("/api/init-models", json={"user_id": user})
        assert init.status_code == 200, init.text
        steps = {s["name"]: s["status"] for s in init.json()["steps"]}
        assert all(steps[n] == "ok" for n in ("enrich", "m1", "m2_svm", "m3")), init.json()
        created_ids = [t["track_id"] for t in tracks[-2:]]
        sources = _db(
            stack,
            "SELECT features_source FROM track WHERE track_id IN (:a, :b)",
            a=created_ids[0],
            b=created_ids[1],
        )
        assert sources == [("predicted",), ("predicted",)]  # the blank tracks were enriched

        event = {"event_id": uuid.uuid4().hex, "user_id": user, "track_id": tracks[0]["track_id"]}
        assert (
            client.post("/api/m3/events", json={"events": [{**event, "kind": "like"}]}).json()[
                "recorded"
            ]
            == 1
        )
        body = {"user_id": user, "limit": 5}
        for path in ("/api/m1/recommend", "/api/m2/recommend", "/api/m3/recommend"):
            assert client.post(path, json=body).status_code == 200, path
        search = client.post("/api/llm/recommend", json=body | {"query": "bright pop"})
        assert search.status_code == 200
        assert client.get(f"/api/m1/status/{user}").json()["trained"] is True
        assert _files_holding(stack, user), "the user's models exist before the erasure"
        assert _rows_holding(stack, user).keys() >= {"user", "user_track", "interaction"}

        erased = client.delete(f"/api/users/{user}")
        assert erased.status_code == 200, erased.text
        report = erased.json()
        assert report["existed"] is True and report["rows"]["user_track"] == 17
        by_service = {s["service"]: s for s in report["services"]}
        assert set(by_service) == {s.name for s in registry.with_user_state()}
        assert by_service["m1"]["files"] and by_service["m3"]["files"]
        assert by_service["m2"]["files"]  # the SVM its recommend trained
        assert by_service["m1"]["cache_entries"] and by_service["m3"]["cache_entries"]

        assert _rows_holding(stack, user) == {}
        assert _files_holding(stack, user) == []
        assert _metrics_holding(stack, user) == []
        # No replica holds a cached answer or model for them any more: a second erasure finds
        # nothing anywhere, and the services no longer know the user.
        second = client.delete(f"/api/users/{user}").json()
        assert second["existed"] is False and set(second["rows"].values()) == {0}
        assert all(
            s["files"] == [] and s["cache_entries"] == 0 and s["metric_series"] == 0
            for s in second["services"]
        ), second
        for path in ("/api/m1/recommend", "/api/m3/recommend"):
            assert client.post(path, json=body).status_code == 404, path
        assert client.get(f"/api/users/{user}").status_code == 404


def test_ingestion_routes_need_a_credential_and_refuse_user_tokens(stack: Stack) -> None:
    stack.require("enrichment")
    user = random.randint(8 * 10**9, 9 * 10**9)
    routes = [
        ("PUT", f"/api/users/{user}", {}),
        ("PUT", f"/api/users/{user}/library", {"mode": "merge", "tracks": []}),
        ("POST", "/api/tracks", {"tracks": [{"track_id": "e2eNoSuchTrack"}]}),
        ("DELETE", f"/api/users/{user}", None),
    ]
    with stack.client() as client:
        for method, path, body in routes:
            anonymous = client.request(method, path, json=body)
            assert anonymous.status_code == 401, (method, path)
        for method, path, body in routes[:3]:
            token = client.request(method, path, json=body, headers=as_user(user))
            assert token.status_code == 403, (method, path, token.text)
        assert _db(stack, "SELECT COUNT(*) FROM `user` WHERE id = :u", u=user) == [(0,)]
