"""Credentials (admin key, app credential, user token), per-credential rate limits, training
queue and strict input, through a small app built by the shared factory."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import APIRouter, Request
from pydantic import Field

from musicspace_shared.auth import Caller
from musicspace_shared.ids import UserId, UserIdPath
from musicspace_shared.inputs import Flag, Limit, StrictBody
from musicspace_shared.settings import CommonSettings
from musicspace_shared.web import create_service_app, train_in_queue
from tests.asgi import serving
from tests.credentials import APP, APP_KEY, USER_TOKEN_SECRET, as_user, user_token

ADMIN_KEY = "admin-key-0123456789abcdef"
ADMIN = {"X-API-Key": ADMIN_KEY}


class Body(StrictBody):
    user_id: UserId
    limit: Limit = Field(10, le=50)
    exclude_owned: Flag = True
    elsewhere = {"max_per_artist": "m1 and m3 recommend take it"}


def build_app(database_url: str, tmp_path, **overrides):
    router = APIRouter(prefix="/api/demo")
    gate, progress = asyncio.Event(), asyncio.Condition()

    async def count(name: str) -> None:
        async with progress:
            setattr(app.state, name, getattr(app.state, name) + 1)
            progress.notify_all()

    @router.get("/status/{user_id}")
    async def status(user_id: UserIdPath, caller: Caller) -> dict[str, object]:
        caller.act_for(user_id)
        return {"user_id": user_id, "scope": caller.scope}

    @router.post("/recommend")
    async def recommend(body: Body, caller: Caller) -> dict[str, object]:
        caller.act_for(body.user_id)
        return body.model_dump()

    @router.post("/train")
    async def train(body: Body, request: Request, caller: Caller) -> dict[str, object]:
        caller.act_for(body.user_id)
        await count("started")

        async def work(_session) -> dict[str, object]:
            await count("runs")
            await gate.wait()
            return {"user_id": body.user_id, "run": request.app.state.runs}

        return await train_in_queue(request, body.user_id, work)

    settings = CommonSettings(
        DATABASE_URL=database_url,
        MODEL_ROOT=tmp_path,
        ADMIN_API_KEY=ADMIN_KEY,
        APP_API_KEY=APP_KEY,
        USER_TOKEN_SECRET=USER_TOKEN_SECRET,
        **overrides,
    )
    app = create_service_app(
        service="demo", settings=settings, title="demo", version="0", routers=[router]
    )
    app.state.gate, app.state.started, app.state.runs = gate, 0, 0

    async def reached(name: str, value: int) -> None:
        async with progress:
            await progress.wait_for(lambda: getattr(app.state, name) >= value)

    app.state.reached = reached
    return app


async def get(app, path: str, headers: dict[str, str]) -> httpx.Response:
    async with serving(app, headers=headers) as client:
        return await client.get(path)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer nope"}, 401),
        ({"Authorization": f"Bearer {APP_KEY[:-1]}"}, 401),
        ({"Authorization": f"Bearer {APP_KEY[:5]} {APP_KEY[5:]}"}, 401),
        ({"Authorization": f"Bearer {APP_KEY}   "}, 200),  # as the gateway strips it: RFC 9110
        ({"X-API-Key": f"{APP_KEY} \t"}, 200),
        ({"Authorization": f"Basic {APP_KEY}"}, 401),
        ({"Authorization": f"Bearer {APP_KEY}", "X-API-Key": APP_KEY}, 401),  # one, not two
        (APP, 200),
        ({"X-API-Key": APP_KEY}, 200),
        (ADMIN, 200),
        (as_user(7), 200),
        (as_user(8), 403),  # another user's data
        (as_user(7, ttl_s=-60), 401),  # expired
        (as_user(7, secret="another-secret-0123456789abcdefghij"), 401),
        (as_user("7.0"), 401),  # sub must be a user id
    ],
)
async def test_user_route_needs_a_credential_for_that_user(
    sqlite_url, tmp_path, headers, status
) -> None:
    response = await get(build_app(sqlite_url, tmp_path), "/api/demo/status/7", headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(
        "application/json" if status == 200 else "application/problem+json"
    )


async def test_unsigned_and_other_algorithm_tokens_are_refused(sqlite_url, tmp_path) -> None:
    import jwt

    none_alg = jwt.encode({"sub": "7", "exp": 9999999999}, None, algorithm="none")
    hs512 = jwt.encode({"sub": "7", "exp": 9999999999}, USER_TOKEN_SECRET, algorithm="HS512")
    no_exp = jwt.encode({"sub": "7"}, USER_TOKEN_SECRET, algorithm="HS256")
    app = build_app(sqlite_url, tmp_path)
    for token in (none_alg, hs512, no_exp):
        response = await get(app, "/api/demo/status/7", {"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, (token, response.text)
        assert token not in response.text


async def test_user_token_for_another_user_in_the_body_is_403(sqlite_url, tmp_path) -> None:
    async with serving(build_app(sqlite_url, tmp_path), headers=as_user(7)) as client:
        own = await client.post("/api/demo/recommend", json={"user_id": 7})
        other = await client.post("/api/demo/recommend", json={"user_id": 8})
    assert own.status_code == 200 and other.status_code == 403
    assert "own user" in other.json()["detail"]


async def test_audience_is_required_when_configured(sqlite_url, tmp_path) -> None:
    app = build_app(sqlite_url, tmp_path, USER_TOKEN_AUDIENCE="musicspace")
    assert (await get(app, "/api/demo/status/7", as_user(7))).status_code == 401
    good = as_user(7, aud="musicspace")
    assert (await get(app, "/api/demo/status/7", good)).status_code == 200


async def test_user_token_rate_limit_is_per_user_with_retry_after(sqlite_url, tmp_path) -> None:
    app = build_app(sqlite_url, tmp_path, RATE_LIMIT_USER_PER_S=1, RATE_LIMIT_USER_BURST=3)
    async with serving(app, headers={}) as client:
        seven = [
            (await client.get("/api/demo/status/7", headers=as_user(7))).status_code
            for _ in range(5)
        ]
        eight = await client.get("/api/demo/status/8", headers=as_user(8))
        app_key = await client.get("/api/demo/status/7", headers=APP)
        limited = await client.get("/api/demo/status/7", headers=as_user(7))
    assert seven == [200, 200, 200, 429, 429]
    assert eight.status_code == 200, "another user's token has its own bucket"
    assert app_key.status_code == 200, "the app credential has its own bucket"
    assert int(limited.headers["retry-after"]) >= 1
    assert "per credential" in limited.json()["detail"]


async def test_app_credential_rate_limit(sqlite_url, tmp_path) -> None:
    app = build_app(sqlite_url, tmp_path, RATE_LIMIT_APP_PER_S=1, RATE_LIMIT_APP_BURST=2)
    async with serving(app, headers=APP) as client:
        statuses = [(await client.get("/api/demo/status/7")).status_code for _ in range(4)]
        admin = await client.get(
            "/api/demo/status/7", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )
    assert statuses == [200, 200, 429, 429]
    assert admin.status_code == 200, "the admin key is not rate limited"


async def test_second_train_for_a_user_joins_the_running_one(sqlite_url, tmp_path) -> None:
    app = build_app(sqlite_url, tmp_path)
    async with serving(app) as client:
        calls = [
            asyncio.create_task(client.post("/api/demo/train", json={"user_id": 5}))
            for _ in range(3)
        ]
        await app.state.reached("started", 3)
        app.state.gate.set()
        answers = await asyncio.gather(*calls)
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert app.state.runs == 1, "one training served all three requests"
    assert {a.json()["run"] for a in answers} == {1}


async def test_training_queue_beyond_its_limit_is_429_with_retry_after(
    sqlite_url, tmp_path
) -> None:
    app = build_app(sqlite_url, tmp_path, TRAIN_QUEUE_LIMIT=2)
    async with serving(app) as client:
        running = [
            asyncio.create_task(client.post("/api/demo/train", json={"user_id": user}))
            for user in (1, 2)
        ]
        await app.state.reached("runs", 2)
        refused = await client.post("/api/demo/train", json={"user_id": 3})
        joined = asyncio.create_task(client.post("/api/demo/train", json={"user_id": 1}))
        await asyncio.sleep(0.05)
        app.state.gate.set()
        done = await asyncio.gather(*running, joined)
        after = await client.post("/api/demo/train", json={"user_id": 3})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert "queue is full" in refused.json()["detail"]
    assert [d.status_code for d in done] == [200, 200, 200], "joining a running user is free"
    assert after.status_code == 200, "the queue has room again"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"user_id": True}, "body.user_id: Input should be a valid integer (got true)"),
        ({"user_id": "1"}, 'body.user_id: Input should be a valid integer (got "1")'),
        ({"user_id": " 1 "}, "body.user_id: Input should be a valid integer"),
        ({"user_id": 1.0}, "body.user_id: Input should be a valid integer (got 1.0)"),
        ({"user_id": 1, "limit": True}, "body.limit: Input should be a valid integer"),
        (
            {"user_id": 1, "exclude_owned": "no"},
            "body.exclude_owned: Input should be a valid boolean",
        ),
        ({"user_id": 1, "limt": 5}, "unknown field(s) 'limt'; this body takes: user_id, limit"),
        ({"user_id": 1, "max_per_artist": 2}, "'max_per_artist': m1 and m3 recommend take it"),
    ],
)
async def test_body_values_are_not_coerced_and_unknown_fields_are_named(
    sqlite_url, tmp_path, body, detail
) -> None:
    async with serving(build_app(sqlite_url, tmp_path)) as client:
        response = await client.post("/api/demo/recommend", json=body)
    assert response.status_code == 422
    assert detail in response.json()["detail"]


@pytest.mark.parametrize("raw", ["+7", "%207", "7%20", "1_000", "07", "7.0", "0x7", "true"])
async def test_path_ids_are_plain_decimal(sqlite_url, tmp_path, raw) -> None:
    response = await get(build_app(sqlite_url, tmp_path), f"/api/demo/status/{raw}", ADMIN)
    assert response.status_code == 422, response.text
    assert "decimal digits" in response.json()["detail"] or "greater" in response.json()["detail"]


async def test_non_json_body_is_415(sqlite_url, tmp_path) -> None:
    async with serving(build_app(sqlite_url, tmp_path)) as client:
        form = await client.post("/api/demo/recommend", data={"user_id": "1"})
        text = await client.post(
            "/api/demo/recommend", content=b'{"user_id": 1}', headers={"content-type": "text/plain"}
        )
        json_ok = await client.post(
            "/api/demo/recommend",
            content=b'{"user_id": 1}',
            headers={"content-type": "application/json; charset=utf-8"},
        )
    assert form.status_code == 415 and text.status_code == 415
    assert "application/json" in text.json()["detail"] and "text/plain" in text.json()["detail"]
    assert json_ok.status_code == 200


async def test_405_has_allow_and_head_works_where_get_does(sqlite_url, tmp_path) -> None:
    async with serving(build_app(sqlite_url, tmp_path)) as client:
        wrong = await client.delete("/api/demo/status/7")
        post_only = await client.get("/api/demo/recommend")
        head = await client.head("/api/demo/status/7")
        get_ = await client.get("/api/demo/status/7")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, HEAD"
    assert post_only.status_code == 405 and post_only.headers["allow"] == "POST"
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == get_.headers["content-length"]


async def test_trailing_slash_is_404_not_a_redirect_built_from_host(sqlite_url, tmp_path) -> None:
    async with serving(build_app(sqlite_url, tmp_path)) as client:
        response = await client.get("/api/demo/status/7/", headers={"Host": "evil.example"})
    assert response.status_code == 404
    assert "location" not in response.headers


def test_openapi_declares_the_security_schemes(sqlite_url, tmp_path) -> None:
    schema = build_app(sqlite_url, tmp_path).openapi()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearer"]["scheme"] == "bearer" and "JWT" in schemes["bearer"]["description"]
    assert schemes["apiKey"]["name"] == "X-API-Key"
    operation = schema["paths"]["/api/demo/status/{user_id}"]["get"]
    assert {"bearer": []} in operation["security"] and {"apiKey": []} in operation["security"]
    assert "Credentials" in schema["info"]["description"]
    assert {"401", "403", "429"} <= set(operation["responses"])
    assert "415" in schema["paths"]["/api/demo/recommend"]["post"]["responses"]
    assert set(operation["responses"]["403"]["content"]) == {"application/problem+json"}
    body = schema["components"]["schemas"]["Body"]
    assert body["additionalProperties"] is False


def test_user_token_helper_matches_the_documented_format() -> None:
    import jwt

    claims = jwt.decode(user_token(42), USER_TOKEN_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "42" and claims["exp"] > 0
