"""Model lifecycle in the service: missing -> not ready, reload on a new version, integrity."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from musicspace_m2.app import create_app
from musicspace_m2.settings import MODEL_FILE
from musicspace_shared.db.engine import make_engine
from musicspace_shared.db.tables import ModelRecord
from musicspace_shared.model_store import (
    ModelMeta,
    load_pickle,
    new_version,
    now_iso,
    publish_pickle,
    read_meta,
)
from tests.asgi import serving

from .helpers import make_settings

TEXT_ITEM = {"items": [{"artist": "Daft Punk", "title": "One More Time"}]}


def _copy_model(source_root: Path, target_root: Path) -> Path:
    target = target_root / "M2"
    target.mkdir(parents=True)
    for path in (source_root / "M2").glob(MODEL_FILE + "*"):
        shutil.copy(path, target / path.name)
    return target / MODEL_FILE


async def test_train_global_from_db_publishes_model_with_metadata(
    trained: dict[str, Any], model_root: Path, m2_db_url: str
) -> None:
    meta = read_meta(model_root / "M2" / MODEL_FILE)
    assert (
        meta is not None and meta.version == trained["version"] and meta.sha256 == trained["sha256"]
    )
    assert meta.rows == trained["rows"] > 100
    assert 0 < meta.metrics["holdout_r2_mean"] < 1 and "holdout_artist_mean_r2_mean" in meta.metrics
    assert meta.extra["model"]["stage2"]
    engine = make_engine(url=m2_db_url)
    async with engine.connect() as conn:
        versions = (
            (await conn.execute(sa.select(ModelRecord.version).where(ModelRecord.family == "M2")))
            .scalars()
            .all()
        )
    await engine.dispose()
    assert trained["version"] in versions


async def test_readyz_reports_missing_model_until_one_is_trained(
    m2_db_url: str, tmp_path: Path
) -> None:
    app = create_app(make_settings(m2_db_url, tmp_path))
    async with serving(app) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["model"].startswith("missing: ")
        response = await client.post("/api/m2/predict-audio", json=TEXT_ITEM)
        assert response.status_code == 503 and "train m2" in response.json()["detail"]


async def test_service_reloads_when_a_new_version_is_published(
    trained: dict[str, Any], model_root: Path, m2_db_url: str, tmp_path: Path
) -> None:
    path = _copy_model(model_root, tmp_path)
    app = create_app(make_settings(m2_db_url, tmp_path))
    async with serving(app) as client:
        before = (await client.post("/api/m2/predict-audio", json=TEXT_ITEM)).json()
        assert before["model_version"] == trained["version"]
        # Another replica publishes a newer model on the shared volume.
        model, meta = load_pickle(path)
        newer = publish_pickle(
            path,
            model,
            ModelMeta(
                version=new_version(), trained_at=now_iso(), rows=meta.rows, metrics=meta.metrics
            ),
        )
        after = (await client.post("/api/m2/predict-audio", json=TEXT_ITEM)).json()
        assert after["model_version"] == newer.version


async def test_checksum_mismatch_refuses_to_load(
    m2_db_url: str, model_root: Path, tmp_path: Path
) -> None:
    path = _copy_model(model_root, tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    app = create_app(make_settings(m2_db_url, tmp_path))
    async with serving(app) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert "checksum" in ready.json()["checks"]["model"]
        assert (await client.post("/api/m2/predict-audio", json=TEXT_ITEM)).status_code == 503


async def test_corrupt_newer_version_keeps_serving_the_verified_one(
    trained: dict[str, Any], model_root: Path, m2_db_url: str, tmp_path: Path
) -> None:
    path = _copy_model(model_root, tmp_path)
    app = create_app(make_settings(m2_db_url, tmp_path))
    async with serving(app) as client:
        assert (await client.post("/api/m2/predict-audio", json=TEXT_ITEM)).status_code == 200
        model, meta = load_pickle(path)
        publish_pickle(
            path, model, ModelMeta(version=new_version(), trained_at=now_iso(), rows=meta.rows)
        )
        path.write_bytes(path.read_bytes()[:-10])  # truncated after publishing
        response = await client.post("/api/m2/predict-audio", json=TEXT_ITEM)
        assert (
            response.status_code == 200 and response.json()["model_version"] == trained["version"]
        )


async def test_fresh_replica_falls_back_to_the_previous_model_when_the_new_one_is_corrupt(
    trained: dict[str, Any], model_root: Path, m2_db_url: str, tmp_path: Path
) -> None:
    path = _copy_model(model_root, tmp_path)
    model, meta = load_pickle(path)
    publish_pickle(
        path,
        model,
        ModelMeta(version=new_version(), trained_at=now_iso(), rows=meta.rows),
        keep_previous=True,
    )
    path.write_bytes(path.read_bytes()[:-10])  # the new one is half-written
    app = create_app(make_settings(m2_db_url, tmp_path))
    async with serving(app) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"]["model"].startswith("degraded: serving an earlier")
        response = await client.post("/api/m2/predict-audio", json=TEXT_ITEM)
        assert response.json()["model_version"] == trained["version"]
        metrics = (await client.get("/metrics")).text
        assert 'musicspace_events_total{event="model_load_failures",service="m2"} 1.0' in metrics


async def test_training_on_a_big_catalog_takes_a_seeded_sample_of_its_tracks(
    m2_db_url: str, tmp_path: Path
) -> None:
    from functools import partial

    from musicspace_m2.training import train_global_from_db

    from .helpers import FAST_MODEL

    settings = make_settings(m2_db_url, tmp_path, train_max_tracks=1000)
    train = partial(train_global_from_db, config=FAST_MODEL, progress=lambda _m: None)
    summary = await train(settings=settings, validate=False)
    assert summary["rows"] == 1000 < summary["measured_tracks"]
    assert read_meta(settings.model_path).rows == 1000
