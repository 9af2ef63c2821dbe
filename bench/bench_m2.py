"""Benchmark: m2 predict-audio throughput, in-process and through HTTP, at batch 1, 100, 1000.

- in_process: `service.predict_results` (what the route runs: inputs, model, per-item results)
  on text items taken from the demo catalog;
- model_only: the feature model's `predict` on the same items (no per-item result objects);
- http: POST /api/m2/predict-audio to a real m2 process (uvicorn, one worker), one client,
  sequential requests, the same items; `http_overhead_pct` compares wall-clock rates with
  in_process, `http_extra_cpu_pct` the server's CPU per track with in_process CPU per track.
Every rate is given per wall second and per CPU second: on a shared machine the wall figure
mostly measures the other tenants, the CPU figure is the load-independent one.
Goal: >= 10,000 tracks/s in-process, HTTP adding <= 30% at batch 1000.

The model: the bench stack's M2 model (var/bench/models) when it exists, else one trained here
from the demo catalog file (published under var/bench/m2, reused next time).
`run(context) -> dict` for bench/run.py; `python bench/bench_m2.py [--quick]` runs it alone
and writes bench/results/m2.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from bench import credentials  # noqa: E402
from bench.context import process_cpu_s  # noqa: E402
from bench.run import write_result  # noqa: E402
from musicspace_cli.demo_data import DEMO_CATALOG  # noqa: E402
from musicspace_m2.schemas import PredictItem  # noqa: E402
from musicspace_m2.service import inputs_for_text, predict_results  # noqa: E402
from musicspace_m2.settings import MODEL_FILE  # noqa: E402
from musicspace_m2.text_features import read_catalog_file  # noqa: E402
from musicspace_m2.training import stderr_progress, train_model  # noqa: E402
from musicspace_shared.model_store import (  # noqa: E402
    ModelMeta,
    load_pickle,
    new_version,
    now_iso,
    publish_pickle,
)
from tests.processes import ServiceProcess, free_port  # noqa: E402

BATCHES = (1, 100, 1000)
WORK = ROOT / "var" / "bench" / "m2"


def _model_root() -> Path:
    """A model root holding M2/tfidf_gbr_models.pkl (the bench stack's, or one trained here)."""
    stack_root = ROOT / "var" / "bench" / "models"
    if (stack_root / "M2" / MODEL_FILE).exists():
        return stack_root
    own = WORK / "models"
    path = own / "M2" / MODEL_FILE
    if not path.exists():
        catalog = read_catalog_file(DEMO_CATALOG)
        keep = np.where(catalog.has_features)[0]
        model, metrics = train_model(
            catalog.inputs.take(keep),
            catalog.features[keep],
            progress=stderr_progress("bench m2 train"),
            validate=False,
        )
        publish_pickle(
            path,
            model,
            ModelMeta(version=new_version(), trained_at=now_iso(), rows=len(keep), metrics=metrics),
        )
    return own


def _items(n: int = 1000) -> list[dict[str, Any]]:
    catalog = read_catalog_file(DEMO_CATALOG)
    rng = np.random.default_rng(5)
    picks = rng.choice(len(catalog.track_ids), n, replace=False)
    c = catalog.inputs
    items = []
    for i in picks:
        item: dict[str, Any] = {
            "artist": c.artists[i] or "unknown",
            "title": c.titles[i] or "untitled",
        }
        if c.genres[i]:
            item["genre"] = c.genres[i]
        if c.subgenres[i]:
            item["subgenre"] = c.subgenres[i]
        if c.albums[i]:
            item["album"] = c.albums[i][:512]
        if not np.isnan(c.popularity[i]):
            item["popularity"] = int(c.popularity[i])
        items.append(item)
    return items


def _rate(
    call: Any, batch: int, seconds: float, cpu_clock: Any = time.process_time
) -> dict[str, float]:
    """Repeat `call` for about `seconds`: tracks per wall second and per CPU second, median latency.

    On this shared machine wall time mostly measures the other tenants; CPU time (of the
    process doing the work) is the load-independent figure.
    """
    call()  # warm-up
    times = []
    cpu0 = cpu_clock()
    started = time.perf_counter()
    while time.perf_counter() - started < seconds or len(times) < 3:
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    cpu = max(cpu_clock() - cpu0, 1e-9)
    total = sum(times)
    return {
        "tracks_per_s": round(batch * len(times) / total, 1),
        "tracks_per_cpu_s": round(batch * len(times) / cpu, 1),
        "median_ms": round(float(np.median(times)) * 1000, 2),
        "calls": len(times),
    }


def _in_process(
    model_root: Path, items: list[dict[str, Any]], seconds: float
) -> tuple[dict[str, Any], dict[str, Any], str]:
    predictor, meta = load_pickle(model_root / "M2" / MODEL_FILE)
    parsed = [PredictItem(**item) for item in items]
    full, bare = {}, {}
    for batch in BATCHES:
        chunk = parsed[:batch]
        full[str(batch)] = _rate(
            lambda chunk=chunk: predict_results(predictor=predictor, items=chunk), batch, seconds
        )
        inputs = inputs_for_text(chunk)
        bare[str(batch)] = _rate(lambda inputs=inputs: predictor.predict(inputs), batch, seconds)
    return full, bare, meta.version


def _sqlite_url() -> str:
    from musicspace_shared.db.migrate import upgrade

    url = f"sqlite+aiosqlite:///{WORK / 'bench.db'}"
    WORK.mkdir(parents=True, exist_ok=True)
    upgrade(url)
    return url


def _http(model_root: Path, items: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    env = {
        "DATABASE_URL": os.environ.get("BENCH_M2_DATABASE_URL") or _sqlite_url(),
        "MODEL_ROOT": str(model_root),
        "LOG_LEVEL": "WARNING",
        **credentials.ENV,
    }
    WORK.mkdir(parents=True, exist_ok=True)
    service = ServiceProcess(name="m2", port=free_port(), env=env, log_path=WORK / "m2.log").start()
    out: dict[str, Any] = {}
    try:
        service.wait_ready(timeout_s=300)
        with httpx.Client(base_url=service.url, timeout=60.0) as client:
            for batch in BATCHES:
                payload = json.dumps({"items": items[:batch]}).encode()

                def call(payload: bytes = payload) -> None:
                    response = client.post(
                        "/api/m2/predict-audio",
                        content=payload,
                        headers={"content-type": "application/json", **credentials.AUTH},
                    )
                    response.raise_for_status()

                pid = service.process.pid  # type: ignore[union-attr]
                out[str(batch)] = _rate(
                    call, batch, seconds, cpu_clock=lambda pid=pid: process_cpu_s(pid)
                )
    finally:
        service.stop()
    return out


def run(context: Any = None) -> dict[str, Any]:
    quick = bool(getattr(context, "quick", False))
    seconds = 1.0 if quick else 5.0
    model_root = _model_root()
    items = _items()
    full, bare, version = _in_process(model_root, items, seconds)
    http = _http(model_root, items, seconds)
    overhead = {
        b: round(100.0 * (1 - http[b]["tracks_per_s"] / full[b]["tracks_per_s"]), 1) for b in http
    }
    overhead_cpu = {
        b: round(100.0 * (full[b]["tracks_per_cpu_s"] / http[b]["tracks_per_cpu_s"] - 1), 1)
        for b in http
    }
    best = full["1000"]["tracks_per_s"]
    best_cpu = full["1000"]["tracks_per_cpu_s"]
    return {
        "model_version": version,
        "in_process": full,
        "model_only": bare,
        "http": http,
        "http_overhead_pct": overhead,
        "http_extra_cpu_pct": overhead_cpu,
        "goals": {
            "in_process_tracks_per_s_at_1000": best,
            "in_process_tracks_per_cpu_s_at_1000": best_cpu,
            "in_process_goal": 10000,
            "in_process_met_wall": best >= 10000,
            "in_process_met_cpu": best_cpu >= 10000,
            "http_overhead_pct_at_1000": overhead["1000"],
            "http_extra_cpu_pct_at_1000": overhead_cpu["1000"],
            "http_overhead_goal_pct": 30,
            "http_overhead_met_wall": overhead["1000"] <= 30,
            "http_overhead_met_cpu": overhead_cpu["1000"] <= 30,
        },
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "note": "shared 2-core machine: other processes add noise; one client, sequential requests",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()

    class _Ctx:
        quick = args.quick

    started = time.monotonic()
    result = run(_Ctx())
    record = {
        "name": "m2",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": {"cpus": os.cpu_count(), "note": "shared 2-core machine"},
        "result": result,
        "seconds": round(time.monotonic() - started, 1),
    }
    write_result("m2", record)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
