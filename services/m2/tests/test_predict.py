"""POST /api/m2/predict-audio."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa

from musicspace_m2.schemas import PredictResponse
from musicspace_shared.db.engine import make_engine
from musicspace_shared.db.tables import Track
from musicspace_shared.features import FEATURE_RANGES, FEATURES


async def _some_track_ids(db_url: str, n: int) -> list[str]:
    engine = make_engine(url=db_url)
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(Track.track_id).order_by(Track.track_id).limit(n))
        ids = [r[0] for r in rows]
    await engine.dispose()
    return ids


def _assert_plausible(features: dict[str, float]) -> None:
    assert set(features) == set(FEATURES)
    for name, value in features.items():
        low, high = FEATURE_RANGES[name]
        assert low <= value <= high, (name, value)
        # Reported at the measured data's precision: 3 decimals, or 3 significant digits.
        if name in ("tempo", "loudness"):
            assert value == round(value, 3), (name, value)
        else:
            assert value == float(f"{value:.3g}"), (name, value)


async def test_predict_audio_by_track_id_returns_features_and_version(
    client: httpx.AsyncClient, m2_db_url: str, trained: dict[str, Any]
) -> None:
    ids = await _some_track_ids(m2_db_url, 3)
    response = await client.post(
        "/api/m2/predict-audio", json={"items": [{"track_id": t} for t in ids]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    PredictResponse.model_validate(body)  # the documented schema
    assert body["source"] == "m2"
    assert body["model_version"] == trained["version"]
    assert [r["index"] for r in body["results"]] == [0, 1, 2]
    for result, track_id in zip(body["results"], ids, strict=True):
        assert result["ok"] and result["track_id"] == track_id
        _assert_plausible(result["features"])


async def test_predict_audio_text_item_returns_confidence_and_intervals(
    client: httpx.AsyncClient,
) -> None:
    item = {"artist": "Ed Sheeran", "title": "Shape of You - Acoustic", "genre": "pop"}
    response = await client.post("/api/m2/predict-audio", json={"items": [item]})
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    assert result["ok"] and result["track_id"] is None
    _assert_plausible(result["features"])
    assert 0.0 <= result["confidence"] <= 1.0
    for name, (low, high) in result["intervals"].items():
        assert low <= result["features"][name] <= high


async def test_predict_audio_unknown_id_is_an_item_error_not_a_failed_batch(
    client: httpx.AsyncClient, m2_db_url: str
) -> None:
    known = (await _some_track_ids(m2_db_url, 1))[0]
    items = [
        {"track_id": "doesNotExist123"},
        {"track_id": known},
        {"artist": "Queen", "title": "Radio Ga Ga"},
    ]
    response = await client.post("/api/m2/predict-audio", json={"items": items})
    assert response.status_code == 200, response.text
    results = PredictResponse.model_validate(response.json()).model_dump()["results"]
    assert [r["index"] for r in results] == [0, 1, 2]
    assert (
        results[0]["ok"] is False
        and "unknown" in results[0]["error"]
        and results[0]["features"] is None
    )
    assert results[1]["ok"] and results[2]["ok"]


async def test_predict_audio_item_without_title_returns_422_with_reason(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/m2/predict-audio", json={"items": [{"artist": "Queen"}]})
    assert response.status_code == 422
    assert "track_id" in response.json()["detail"]


async def test_predict_audio_malformed_track_id_returns_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/m2/predict-audio", json={"items": [{"track_id": "../../etc/passwd"}]}
    )
    assert response.status_code == 422


async def test_predict_audio_empty_batch_returns_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/m2/predict-audio", json={"items": []})
    assert response.status_code == 422


async def test_predict_audio_batch_over_1000_returns_422(client: httpx.AsyncClient) -> None:
    items = [{"artist": "A", "title": f"Song {i}"} for i in range(1001)]
    response = await client.post("/api/m2/predict-audio", json={"items": items})
    assert response.status_code == 422
    assert "items" in response.json()["detail"]


async def test_predict_audio_batch_of_1000_text_items_succeeds(client: httpx.AsyncClient) -> None:
    items = [{"artist": f"Artist {i % 37}", "title": f"Song {i} (Live)"} for i in range(1000)]
    response = await client.post("/api/m2/predict-audio", json={"items": items})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1000
