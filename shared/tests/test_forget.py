"""Forgetting a user in one service process: files, cached answers, metric series, the route."""

from __future__ import annotations

import httpx
import pytest
from cachetools import LRUCache, TTLCache
from prometheus_client import CollectorRegistry, Counter, generate_latest

from musicspace_shared.forget import drop_cached, drop_metric_series, mentions, remove_user_files
from musicspace_shared.model_holder import UserModels
from musicspace_shared.settings import CommonSettings
from musicspace_shared.web import create_service_app
from tests.asgi import serving
from tests.credentials import APP, as_user

ADMIN = {"X-API-Key": "s3cret"}


def test_a_key_mentions_the_user_at_any_depth_but_not_as_a_flag_or_text() -> None:
    assert mentions((5, "v1", 3), 5)
    assert mentions(((5, "v1"), 10, 2), 5)
    assert not mentions((6, "5", 55), 5)
    assert not mentions((True, "x"), 1)


def test_drop_cached_removes_only_the_users_entries() -> None:
    cache: LRUCache = LRUCache(100)
    cache[(5, "v", 1)] = "ranked"
    cache[((5, "v", 1), 10, 2)] = "rendered"
    cache[(6, "v", 1)] = "other user"
    ttl: TTLCache = TTLCache(10, ttl=60)
    ttl[(5, 10, 2, "v")] = "answer"
    assert drop_cached(cache, 5) == 2 and drop_cached(ttl, 5) == 1
    assert list(cache) == [(6, "v", 1)] and not ttl
    assert drop_cached(cache, 5) == 0


def test_drop_cached_forgets_a_held_user_model(tmp_path) -> None:
    models: UserModels[object] = UserModels(lambda user_id: tmp_path / f"{user_id}.pkl")
    models._cache[5] = object()  # as a get() that loaded it leaves it
    assert drop_cached(models, 5) == 1 and drop_cached(models, 5) == 0


def test_metric_series_labelled_with_the_user_are_removed_and_no_others() -> None:
    registry = CollectorRegistry()
    per_user = Counter("clicks", "per user", ["service", "user_id"], registry=registry)
    by_status = Counter("answers", "by status", ["service", "status"], registry=registry)
    per_user.labels("m1", "5").inc()
    per_user.labels("m1", "6").inc()
    by_status.labels("m1", "5").inc()  # a status, not a user: kept
    assert drop_metric_series(registry, 5) == 1
    text = generate_latest(registry).decode()
    assert 'user_id="5"' not in text and 'user_id="6"' in text and 'status="5"' in text


def _model_volume(root) -> None:
    """The three families' user models for users 5 and 55, as the services write them."""
    for user in (5, 55):
        folder = root / "M1" / "user_models" / str(user)
        folder.mkdir(parents=True)
        (folder / "model.pkl").write_bytes(b"m1")
        (folder / "metadata.json").write_text("{}")
        svm = root / "M2" / "user_svm_models"
        svm.mkdir(parents=True, exist_ok=True)
        for suffix in (".pkl", ".pkl.meta.json", ".pkl.last_used"):
            (svm / f"{user}{suffix}").write_bytes(b"m2")
        cbm = root / "M3" / "user_models"
        cbm.mkdir(parents=True, exist_ok=True)
        for suffix in ("_.cbm", "_.cbm.meta.json", "_.cbm.prev"):
            (cbm / f"{user}{suffix}").write_bytes(b"m3")
    (root / "M3" / "user_models" / ".5_.cbm.abc123.tmp").write_bytes(b"interrupted")


def test_remove_user_files_takes_every_file_of_the_user_in_each_family(tmp_path) -> None:
    _model_volume(tmp_path)
    removed = {family: remove_user_files(tmp_path, family, 5) for family in ("M1", "M2", "M3")}
    assert removed["M1"] == [{"paths": ["M1/user_models/5"], "bytes": 4}]
    assert sorted(p for e in removed["M2"] for p in e["paths"]) == [
        "M2/user_svm_models/5.pkl",
        "M2/user_svm_models/5.pkl.last_used",
        "M2/user_svm_models/5.pkl.meta.json",
    ]
    assert len([p for e in removed["M3"] for p in e["paths"]]) == 4  # with the temp file
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left and all("55" in path for path in left), left
    assert remove_user_files(tmp_path, "M3", 5) == []


def _app(sqlite_url: str, tmp_path, service: str):
    settings = CommonSettings(DATABASE_URL=sqlite_url, MODEL_ROOT=tmp_path, ADMIN_API_KEY="s3cret")
    return create_service_app(
        service=service, settings=settings, title=service, version="0", routers=[]
    )


@pytest.mark.parametrize(
    ("headers", "status"), [({}, 401), (APP, 403), (as_user(5), 403), (ADMIN, 200)]
)
async def test_forget_route_needs_the_admin_key(sqlite_url, tmp_path, headers, status) -> None:
    async with serving(_app(sqlite_url, tmp_path, "m1"), headers=headers) as client:
        response = await client.delete("/admin/users/5")
    assert response.status_code == status, response.text


async def test_forget_route_removes_the_files_then_nothing(sqlite_url, tmp_path) -> None:
    _model_volume(tmp_path)
    async with serving(_app(sqlite_url, tmp_path, "m3"), headers=ADMIN) as client:
        first = (await client.delete("/admin/users/5")).json()
        second = (await client.delete("/admin/users/5")).json()
        bad = await client.delete("/admin/users/+5")
    assert first["service"] == "m3" and first["user_id"] == 5 and len(first["files"]) == 2
    assert ":" in first["instance"]
    assert second["files"] == [] and second["cache_entries"] == 0
    assert not (tmp_path / "M3" / "user_models" / "5_.cbm").exists()
    assert (tmp_path / "M1" / "user_models" / "5").exists()  # another service's volume
    assert bad.status_code == 422


async def test_services_without_user_state_have_no_forget_route(sqlite_url, tmp_path) -> None:
    async with serving(_app(sqlite_url, tmp_path, "enrichment"), headers=ADMIN) as client:
        response = await client.delete("/admin/users/5")
    assert response.status_code in (404, 405)
    assert isinstance(response, httpx.Response)
