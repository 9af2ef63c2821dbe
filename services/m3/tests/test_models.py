"""Model registry: newer versions are picked up, tampered files are refused, no model -> 503."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from musicspace_m3.app import create_app
from musicspace_m3.models import ModelRegistry
from musicspace_shared import model_store
from musicspace_shared.metrics import ServiceMetrics
from tests.asgi import serving

from .helpers import make_settings, users_with_tracks

NAME = "recommender_U2_MyInitialT_20260201.cbm"


def _copy_volume(trained: dict[str, Any], root: Path) -> Path:
    src = Path(trained["path"])
    dst = root / "M3" / NAME
    dst.parent.mkdir(parents=True, exist_ok=True)  # the snapshot may be saved there
    shutil.copy(src, dst)
    shutil.copy(src.with_name(src.name + ".meta.json"), dst.with_name(dst.name + ".meta.json"))
    return dst


def test_registry_reloads_when_another_replica_publishes(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    path = _copy_volume(trained, tmp_path)
    registry = ModelRegistry(path.parent, NAME, check_every_s=0)
    first = registry.refresh_global()
    assert first is not None and first.version == trained["version"]
    time.sleep(0.01)
    meta = model_store.ModelMeta(
        version=model_store.new_version(), trained_at=model_store.now_iso(), rows=1
    )
    model_store.publish_bytes(path, path.read_bytes(), meta)
    assert registry.refresh_global().version == meta.version


def test_registry_refuses_tampered_model_and_keeps_previous(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    path = _copy_volume(trained, tmp_path)
    metrics = ServiceMetrics("m3")
    registry = ModelRegistry(path.parent, NAME, check_every_s=0, metrics=metrics)
    assert registry.refresh_global().version == trained["version"]
    time.sleep(0.01)
    meta = model_store.ModelMeta(
        version="tampered", trained_at=model_store.now_iso(), rows=1, sha256="0" * 64
    )
    path.with_name(path.name + ".meta.json").write_text(__import__("json").dumps(meta.__dict__))
    assert registry.refresh_global().version == trained["version"]
    assert metrics.events.labels("m3", "model_load_failures")._value.get() == 1
    assert registry.holder.state == "degraded"


async def test_readyz_is_503_until_a_global_model_exists(
    trained: dict[str, Any], m3_db_url: str, tmp_path: Path
) -> None:
    app = create_app(make_settings(m3_db_url, tmp_path))
    async with serving(app) as client:
        not_ready = await client.get("/readyz")
        assert not_ready.status_code == 503 and "model" in not_ready.json()["checks"]
        user_id = (await users_with_tracks(m3_db_url))[0][0]
        rec = await client.post("/api/m3/recommend", json={"user_id": user_id, "limit": 5})
        assert rec.status_code == 503
        _copy_volume(trained, tmp_path)
        assert (await client.get("/readyz")).status_code == 200


def test_fresh_replica_with_corrupt_model_serves_the_kept_previous_one(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    path = _copy_volume(trained, tmp_path)
    data = path.read_bytes()
    newer = model_store.ModelMeta(version="newer", trained_at=model_store.now_iso(), rows=1)
    model_store.publish_bytes(path, data, newer, keep_previous=True)
    path.write_bytes(data[:-10] + b"corrupted!")  # the published file is damaged after the fact
    loaded = ModelRegistry(path.parent, NAME, check_every_s=0).refresh_global()
    assert loaded is not None and loaded.version == trained["version"]
