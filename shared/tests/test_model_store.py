"""Model artifacts: atomic publish with a checksum, refused when corrupt."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from musicspace_shared import model_ops
from musicspace_shared.model_store import (
    ModelIntegrityError,
    ModelMeta,
    load_pickle,
    new_version,
    now_iso,
    publish_pickle,
    read_meta,
    touch_last_used,
    user_dir,
    user_file,
)


def meta(rows: int = 3) -> ModelMeta:
    return ModelMeta(version=new_version(), trained_at=now_iso(), rows=rows, metrics={"r2": 0.5})


def test_published_model_loads_with_its_metadata(tmp_path) -> None:
    path = tmp_path / "M2" / "model.pkl"
    written = publish_pickle(path, {"weights": [1, 2, 3]}, meta())
    model, loaded = load_pickle(path)
    assert model == {"weights": [1, 2, 3]}
    assert loaded.sha256 == written.sha256 and len(loaded.sha256) == 64
    assert loaded.metrics == {"r2": 0.5}
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_corrupted_model_is_refused(tmp_path) -> None:
    path = tmp_path / "model.pkl"
    publish_pickle(path, list(range(100)), meta())
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError):
        load_pickle(path)


def test_model_without_metadata_is_not_loaded(tmp_path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(b"not a pickle")
    with pytest.raises(FileNotFoundError):
        load_pickle(path)
    assert read_meta(path) is None


def test_republish_replaces_version(tmp_path) -> None:
    path = tmp_path / "model.pkl"
    first = publish_pickle(path, "a", meta())
    second = publish_pickle(path, "b", meta())
    assert load_pickle(path)[0] == "b"
    assert read_meta(path).version == second.version != first.version


@pytest.mark.parametrize("bad", [0, -1, True, "1", "../etc", 2**60])
def test_user_paths_reject_invalid_ids(tmp_path, bad) -> None:
    with pytest.raises(ValueError):
        user_dir(tmp_path, bad)
    with pytest.raises(ValueError):
        user_file(tmp_path, bad, ".pkl")


def _age(path, days: int) -> None:
    stamp = (datetime.now(UTC) - timedelta(days=days)).timestamp()
    os.utime(path, (stamp, stamp))


def test_usage_and_cleanup_by_last_use(tmp_path) -> None:
    old_dir = user_dir(tmp_path / "M1" / "user_models", 7)
    publish_pickle(old_dir / "model.pkl", "old", meta())
    fresh = user_file(tmp_path / "M3" / "user_models", 8, "_.cbm")
    publish_pickle(fresh, "fresh", meta())
    touch_last_used(fresh)
    stale = user_file(tmp_path / "M3" / "user_models", 9, "_.cbm")
    publish_pickle(stale, "stale", meta())
    for path in [*old_dir.iterdir(), stale, stale.with_name(stale.name + ".meta.json")]:
        _age(path, 120)

    report = model_ops.usage(tmp_path)
    assert report["M1"]["user_models"] == 1 and report["M3"]["user_models"] == 2
    assert report["M3"]["user_model_bytes"] > 0 and report["M2"]["bytes"] == 0

    dry = model_ops.cleanup(tmp_path, older_than_days=90, dry_run=True)
    assert sorted((r["family"], r["user_id"]) for r in dry["removed"]) == [("M1", 7), ("M3", 9)]
    assert old_dir.exists() and stale.exists()

    model_ops.cleanup(tmp_path, older_than_days=90, dry_run=False)
    assert not old_dir.exists() and not stale.exists()
    assert not stale.with_name(stale.name + ".meta.json").exists()
    assert load_pickle(fresh)[0] == "fresh"


def test_corrupted_global_model_falls_back_to_the_previous_version(tmp_path) -> None:
    from musicspace_shared.model_store import load_pickle_with_fallback

    path = tmp_path / "global.pkl"
    first = publish_pickle(path, "v1", meta(), keep_previous=True)
    publish_pickle(path, "v2", meta(), keep_previous=True)
    assert load_pickle_with_fallback(path)[0] == "v2"
    path.write_bytes(path.read_bytes()[:-5])  # half-written
    model, artifact = load_pickle_with_fallback(path)
    assert (model, artifact.source, artifact.meta.version) == ("v1", "previous", first.version)
    assert "checksum" in artifact.problem


def test_missing_model_without_previous_raises(tmp_path) -> None:
    from musicspace_shared.model_store import load_pickle_with_fallback

    with pytest.raises(FileNotFoundError):
        load_pickle_with_fallback(tmp_path / "nothing.pkl")


def test_an_entry_removed_by_another_replica_while_listed_is_left_out(tmp_path, monkeypatch):
    """An erasure reaches every replica of a shared volume at once: a file another replica
    removes between two looks at it is left out of the listing, not raised (a 500 before)."""
    folder = tmp_path / "M1" / "user_models" / "42"
    folder.mkdir(parents=True)
    model = folder / "model.bin"
    model.write_bytes(b"x" * 10)
    stat = model_ops.Path.stat

    def stat_then_vanish(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        info = stat(self, *args, **kwargs)
        if self == model:
            self.unlink()  # removed by another replica right after this look
        return info

    monkeypatch.setattr(model_ops.Path, "stat", stat_then_vanish)
    (entry,) = model_ops.user_model_entries(tmp_path / "M1", "M1")
    assert entry.user_id == 42 and entry.bytes == 10 and not model.exists()
