"""ScratchDir: a killed owner's directory is removed by the next one made; a live one is not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from musicspace_shared.scratch import LOCK_NAME, MIN_AGE_S, ScratchDir, remove_abandoned

PREFIX = "musicspace-test-"

OWNER = """
import sys, time
from pathlib import Path
from musicspace_shared.scratch import ScratchDir
scratch = ScratchDir(sys.argv[1], Path(sys.argv[2]))
(scratch.path / "kept.bin").write_bytes(b"x" * 1000)
print(scratch.path, flush=True)
time.sleep(60)
"""


def _aged(path: Path) -> Path:
    """The lock file made older than MIN_AGE_S (a directory made just now is left alone)."""
    past = time.time() - MIN_AGE_S - 5
    os.utime(path / LOCK_NAME, (past, past))
    return path


def test_a_killed_owners_directory_is_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, PREFIX, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert owner.stdout is not None
    killed = Path(owner.stdout.readline().strip())
    live = ScratchDir(PREFIX, tmp_path)
    other = tmp_path / "another-prefix"
    other.mkdir()
    try:
        _aged(killed), _aged(live.path)
        # Its owner still runs: nothing is removed.
        assert remove_abandoned(tmp_path, PREFIX) == [] and (killed / "kept.bin").is_file()
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        assert (killed / "kept.bin").is_file()  # a killed process leaves it

        made = ScratchDir(PREFIX, tmp_path)
        assert made.removed == [killed] and not killed.exists()
        assert live.path.is_dir() and other.is_dir()  # held by this process; not of the prefix
        made.cleanup()
        assert not made.path.exists()
    finally:
        owner.kill()
        live.cleanup()


def test_a_directory_made_just_now_is_not_taken_for_abandoned(tmp_path: Path) -> None:
    fresh = tmp_path / f"{PREFIX}new"
    fresh.mkdir()
    (fresh / LOCK_NAME).touch()  # its maker has not locked it yet
    assert remove_abandoned(tmp_path, PREFIX) == [] and fresh.is_dir()
    assert remove_abandoned(tmp_path, PREFIX, min_age_s=0) == [fresh] and not fresh.exists()
