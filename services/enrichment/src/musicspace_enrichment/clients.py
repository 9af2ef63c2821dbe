"""Typed clients for the peers enrichment calls: m2 (predict-audio, user SVM), m1, m3, llm.

Built on musicspace_shared.http.ServiceClient (long-lived httpx client, bounded retries on
transport errors and 502/503/504). A peer that is down or not ready becomes a step outcome or
UpstreamUnavailable, never an unhandled error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from musicspace_shared.errors import UpstreamUnavailable
from musicspace_shared.features import FEATURE_RANGES, FEATURES
from musicspace_shared.http import ServiceClient


class PredictRejected(Exception):
    """m2 answered predict-audio with a non-retryable error (4xx, 500): maybe a bad item."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class _Result(BaseModel):
    index: int
    ok: bool
    error: str | None = None
    features: dict[str, float] | None = None


class _PredictResponse(BaseModel):
    model_version: str
    results: list[_Result]


@dataclass(frozen=True)
class Prediction:
    """m2's answer for one item: nine values in FEATURES order, or the reason there are none."""

    values: tuple[float, ...] | None
    error: str | None = None


@dataclass(frozen=True)
class PredictBatch:
    model_version: str
    predictions: list[Prediction]  # same order as the items sent


def _clean(features: dict[str, float] | None) -> tuple[tuple[float, ...] | None, str | None]:
    """Nine finite values clipped to their plausible range, or the reason they are unusable."""
    if not features:
        return None, "no features in answer"
    values = []
    for name in FEATURES:
        value = features.get(name)
        if value is None or not math.isfinite(value):
            return None, f"{name} missing or not finite"
        low, high = FEATURE_RANGES[name]
        values.append(min(high, max(low, float(value))))
    return tuple(values), None


class M2Client:
    """m2: predict-audio (the enrichment contract) and the per-user SVM."""

    def __init__(self, http: ServiceClient) -> None:
        self.http = http

    async def predict(self, items: list[dict[str, Any]]) -> PredictBatch:
        """Predict features for items ({track_id} or text); UpstreamUnavailable when m2 is down."""
        response = await self.http.post_json(
            # Enrichment stores values only: no intervals to render, send and parse.
            "/api/m2/predict-audio",
            {"items": items, "intervals": False},
            idempotent=True,
        )
        if response.status_code == 501:
            # Deployed but not implemented yet: for the job that is "not available", not a bad item.
            raise UpstreamUnavailable(
                f"m2 predict-audio not implemented: {response.text[:200]}", service="m2"
            )
        if response.status_code != 200:
            raise PredictRejected(response.status_code, _detail(response))
        try:
            body = _PredictResponse.model_validate_json(response.content)
        except ValidationError as exc:
            raise PredictRejected(
                response.status_code, f"unexpected answer: {exc.errors()[:1]}"
            ) from exc
        by_index: dict[int, Prediction] = {}
        for result in body.results:
            if result.ok:
                values, error = _clean(result.features)
                by_index[result.index] = Prediction(values, error)
            else:
                by_index[result.index] = Prediction(None, result.error or "m2 gave no prediction")
        missing = Prediction(None, "m2 returned no result for this item")
        return PredictBatch(
            body.model_version, [by_index.get(i, missing) for i in range(len(items))]
        )


@dataclass
class PeerOutcome:
    """What a peer said to a training call, in init-models' vocabulary."""

    status: str  # ok | unavailable | not_ready | not_implemented | failed
    http_status: int | None = None
    detail: str | None = None
    body: dict[str, Any] | None = None


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or body)[:300]
    return str(body)[:300]


async def call_peer(
    http: ServiceClient, method: str, path: str, payload: Any = None, **kwargs: Any
) -> PeerOutcome:
    """Call a peer and classify the answer; never raises for a down or failing peer."""
    try:
        if payload is None:
            response = await http.request(method, path, **kwargs)
        else:
            response = await http.request(method, path, json=payload, **kwargs)
    except UpstreamUnavailable as exc:
        not_ready = "HTTP 503" in exc.detail
        return PeerOutcome(
            "not_ready" if not_ready else "unavailable", 503 if not_ready else None, exc.detail
        )
    if 200 <= response.status_code < 300:
        try:
            body = response.json()
        except ValueError:
            body = {"raw": response.text[:300]}
        return PeerOutcome(
            "ok", response.status_code, None, body if isinstance(body, dict) else {"items": body}
        )
    status = "not_implemented" if response.status_code == 501 else "failed"
    return PeerOutcome(status, response.status_code, _detail(response))


@dataclass
class Peers:
    """The long-lived clients of one enrichment process."""

    m1: ServiceClient
    m2: ServiceClient
    m3: ServiceClient
    llm: ServiceClient
    m2_predict: ServiceClient

    @property
    def predictor(self) -> M2Client:
        return M2Client(self.m2_predict)

    async def aclose(self) -> None:
        for client in (self.m1, self.m2, self.m3, self.llm, self.m2_predict):
            await client.aclose()


def build_peers(settings: Any, transport: httpx.AsyncBaseTransport | None = None) -> Peers:
    """One ServiceClient per peer; trainings get the long timeout, predict-audio its own."""

    def client(name: str, url: str, timeout_s: float) -> ServiceClient:
        return ServiceClient(
            name, url, timeout_s=timeout_s, retries=settings.http_retries, transport=transport
        )

    return Peers(
        m1=client("m1", settings.m1_url, settings.train_timeout_s),
        m2=client("m2", settings.m2_url, settings.train_timeout_s),
        m3=client("m3", settings.m3_url, settings.train_timeout_s),
        llm=client("llm", settings.llm_url, settings.http_timeout_s),
        m2_predict=client("m2", settings.m2_url, settings.predict_timeout_s),
    )
