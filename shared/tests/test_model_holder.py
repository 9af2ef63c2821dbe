"""The model holder m1, m2 and m3 share: load, verify, keep the previous one, hot-swap, count
refusals, and name its state in one vocabulary (readiness and the musicspace_model_state gauge)."""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import generate_latest

from musicspace_shared.health import Degraded, ModelState
from musicspace_shared.metrics import ServiceMetrics
from musicspace_shared.model_holder import ModelHolder, UserModels
from musicspace_shared.model_store import ModelMeta, new_version, now_iso, publish_pickle


def publish(path: Path, model: object, *, keep_previous: bool = False) -> str:
    meta = ModelMeta(version=new_version(), trained_at=now_iso(), rows=1)
    publish_pickle(path, model, meta, keep_previous=keep_previous)
    stat = os.stat(path.with_name(path.name + ".meta.json"))  # a new mtime for every publish
    os.utime(path.with_name(path.name + ".meta.json"), ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    return meta.version


def failures(metrics: ServiceMetrics) -> float:
    return metrics.events.labels(metrics.service, "model_load_failures")._value.get()


def state_gauge(metrics: ServiceMetrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_missing_then_ready_then_a_new_version_is_swapped_in(tmp_path: Path) -> None:
    metrics = ServiceMetrics("demo")
    holder: ModelHolder[dict] = ModelHolder(tmp_path / "model.pkl", metrics=metrics)
    assert holder.get() is None and holder.state is ModelState.MISSING
    assert holder.readiness().startswith("missing: ")
    first = publish(tmp_path / "model.pkl", {"w": 1})
    held = holder.get()
    assert held is not None and held.model == {"w": 1} and held.version == first
    assert holder.readiness() is None and holder.state is ModelState.READY
    second = publish(tmp_path / "model.pkl", {"w": 2})
    assert holder.get().version == second and holder.get().model == {"w": 2}
    gauge = state_gauge(metrics)
    assert 'musicspace_model_state{model="global",service="demo",state="ready"} 1.0' in gauge
    assert 'musicspace_model_state{model="global",service="demo",state="missing"} 0.0' in gauge
    assert failures(metrics) == 0


def test_a_corrupt_new_file_is_refused_and_the_held_model_keeps_serving(tmp_path: Path) -> None:
    metrics = ServiceMetrics("demo")
    path = tmp_path / "model.pkl"
    good = publish(path, {"w": 1})
    holder: ModelHolder[dict] = ModelHolder(path, metrics=metrics)
    assert holder.get().version == good
    publish(path, {"w": 2})
    path.write_bytes(path.read_bytes()[:-3])  # half-written
    assert holder.get().version == good
    assert holder.get().version == good  # not retried (nor counted) until the file changes
    assert failures(metrics) == 1
    reason = holder.readiness()
    assert isinstance(reason, Degraded) and "serving an earlier global model" in reason
    assert holder.state is ModelState.DEGRADED
    assert 'state="degraded"} 1.0' in state_gauge(metrics)


def test_a_fresh_holder_uses_the_kept_previous_file_or_fails(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    good = publish(path, {"w": 1})
    publish(path, {"w": 2}, keep_previous=True)
    path.write_bytes(b"garbage")
    holder: ModelHolder[dict] = ModelHolder(path)
    held = holder.get()
    assert held is not None and held.version == good and holder.state is ModelState.DEGRADED
    path.with_name(path.name + ".prev").write_bytes(b"garbage too")
    nothing: ModelHolder[dict] = ModelHolder(path)
    assert nothing.get() is None and nothing.state is ModelState.FAILED
    assert nothing.readiness().startswith("failed: ") and "checksum" in nothing.readiness()


def test_user_models_reload_on_change_and_refuse_corrupt_files(tmp_path: Path) -> None:
    metrics = ServiceMetrics("demo")
    users: UserModels[dict] = UserModels(lambda uid: tmp_path / f"{uid}.pkl", metrics=metrics)
    assert users.get(7) is None
    publish(tmp_path / "7.pkl", {"u": 1})
    assert users.get(7).model == {"u": 1}
    assert (tmp_path / "7.pkl.last_used").exists()  # handed out: marked used for cleanup
    publish(tmp_path / "7.pkl", {"u": 2})
    assert users.get(7).model == {"u": 2}
    (tmp_path / "7.pkl").write_bytes(b"tampered")
    publish_meta_touch = os.stat(tmp_path / "7.pkl.meta.json")
    os.utime(tmp_path / "7.pkl.meta.json", ns=(0, publish_meta_touch.st_mtime_ns + 10))
    assert users.get(7) is None and failures(metrics) == 1
