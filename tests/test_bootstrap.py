"""deploy/bootstrap.py: what `make up` and compose's bootstrap job run on first start.

The musicspace CLI is replaced by a recorder, so these tests check the decisions (migrate
always, import only into an empty DB, train only what is missing, go on after a failure)
without training anything.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from deploy import bootstrap
from musicspace_shared.db.migrate import upgrade

RECORDER = """
import json, sys
from pathlib import Path
args = sys.argv[1:]
with open({log!r}, "a") as f:
    f.write(json.dumps(args) + "\\n")
sys.exit(1 if " ".join(args) in {failing!r} else 0)
"""


def _fake_cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, failing: tuple[str, ...] = ()
) -> Path:
    log = tmp_path / "calls.jsonl"
    script = tmp_path / "fake_cli.py"
    script.write_text(RECORDER.format(log=str(log), failing=list(failing)))
    monkeypatch.setattr(bootstrap, "CLI", [sys.executable, str(script)])
    return log


def _calls(log: Path) -> list[str]:
    return (
        [" ".join(json.loads(line)) for line in log.read_text().splitlines()]
        if log.exists()
        else []
    )


@pytest.fixture
def empty_db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A migrated SQLite DB of its own, with no tracks, and an empty model root."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'musicspace.db'}"
    upgrade(url)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("MODEL_ROOT", str(tmp_path / "models"))
    return tmp_path / "models"


def test_bootstrap_on_empty_db_migrates_imports_and_trains_everything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, empty_db: Path
) -> None:
    log = _fake_cli(monkeypatch, tmp_path)
    assert bootstrap.bootstrap() == []
    assert _calls(log) == [
        "db upgrade",
        "import demo",
        "train m2",
        "train m1",
        "train m3",
        "index rebuild",
    ]
    assert (empty_db / ".bootstrap" / "index_built").is_file()


def test_bootstrap_skips_models_that_exist(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, empty_db: Path
) -> None:
    log = _fake_cli(monkeypatch, tmp_path)
    (empty_db / "M2").mkdir(parents=True)
    (empty_db / "M2" / "tfidf_gbr_models.pkl").write_bytes(b"x")
    (empty_db / "M3").mkdir()
    (empty_db / "M3" / "global.cbm").write_bytes(b"x")
    assert bootstrap.bootstrap() == []
    assert "train m2" not in _calls(log) and "train m3" not in _calls(log)
    assert "train m1" in _calls(log)


def test_bootstrap_stops_at_a_failed_step_unless_keep_going(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, empty_db: Path
) -> None:
    log = _fake_cli(monkeypatch, tmp_path, failing=("train m1",))
    assert bootstrap.bootstrap() == ["train m1"]
    assert _calls(log)[-1] == "train m1"
    log.unlink()
    assert bootstrap.bootstrap(keep_going=True) == ["train m1"]
    assert _calls(log)[-2:] == ["train m3", "index rebuild"]


def test_bootstrap_failed_migration_stops_everything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, empty_db: Path
) -> None:
    log = _fake_cli(monkeypatch, tmp_path, failing=("db upgrade",))
    assert bootstrap.bootstrap(keep_going=True) == ["db upgrade"]
    assert _calls(log) == ["db upgrade"]


def test_bootstrap_only_runs_the_steps_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, empty_db: Path
) -> None:
    """`--only m1`: the swarm test's stack runs m1 alone, with no Chroma for the index."""
    log = _fake_cli(monkeypatch, tmp_path)
    assert bootstrap.bootstrap(only={"m1"}) == []
    assert _calls(log) == ["db upgrade", "import demo", "train m1"]
    log.unlink()
    assert bootstrap.bootstrap(only={"m3", "index"}) == []
    assert _calls(log) == ["db upgrade", "import demo", "train m3", "index rebuild"]
