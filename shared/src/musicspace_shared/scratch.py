"""A process' scratch directory that a killed process does not leave behind for good.

`tempfile.TemporaryDirectory` is removed by `cleanup()` or at exit, not when the process is
killed (SIGKILL, the OOM killer, a host's `kill -9`): m2's directory then keeps its last
build, about 640 MB at 1M tracks, until somebody deletes it. Each `ScratchDir` holds an
exclusive `flock` on a file inside it for as long as its process lives (the kernel releases
it when the process dies, however it dies); making one removes the directories of the same
prefix whose lock nobody holds any more. POSIX only, as the services' images are.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import tempfile
import time
import weakref
from pathlib import Path
from typing import BinaryIO

LOCK_NAME = ".owner.lock"
# A directory made this recently may not hold its lock yet (mkdtemp, then open and flock).
MIN_AGE_S = 10.0


class ScratchDir:
    """A fresh directory under `parent` (the system's temporary folder by default), named
    `<prefix>...`, removed by `cleanup()` (or at exit, as a TemporaryDirectory); abandoned
    ones of the same prefix are removed here."""

    def __init__(self, prefix: str, parent: Path | None = None) -> None:
        parent = Path(parent or tempfile.gettempdir())
        self.removed = remove_abandoned(parent, prefix)
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        lock = _locked(self.path / LOCK_NAME, create=True)
        self._finalizer = weakref.finalize(self, _remove, self.path, lock)

    def cleanup(self) -> None:
        self._finalizer()


def _remove(path: Path, lock: BinaryIO | None) -> None:
    shutil.rmtree(path, ignore_errors=True)
    if lock is not None:
        lock.close()


def remove_abandoned(parent: Path, prefix: str, *, min_age_s: float = MIN_AGE_S) -> list[Path]:
    """The directories `<parent>/<prefix>*` whose owner is gone, removed: those listed."""
    removed = []
    for path in sorted(parent.glob(f"{prefix}*")):
        lock_path = path / LOCK_NAME
        with contextlib.suppress(OSError):
            if time.time() - lock_path.stat().st_mtime < min_age_s:
                continue
            lock = _locked(lock_path, create=False)
            if lock is None:
                continue  # its process is alive
            with lock:
                shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _locked(path: Path, *, create: bool) -> BinaryIO | None:
    """The file opened with an exclusive lock held, or None when another holds it."""
    handle = open(path, "ab" if create else "rb")  # noqa: SIM115 - held open: the lock
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle
