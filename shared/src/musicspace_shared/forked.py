"""Long work on the serving process' own heap, done by a forked child so the server keeps its
interpreter lock.

A thread is not enough for long work that holds the lock. The llm saves its 1M-track snapshot
(packing the rows and name indexes, about 410 MB) this way. In a thread of the serving process
the pack stopped the event loop for up to 244 ms at a time (session 23, through the bench,
bench/results/scale_llm.json: search p99 881 ms and /healthz p99 648 ms beside the save): the
name indexes' 590k sets and the rows' 1M datetimes were pickled in C without a switch of
threads. Since session 24 those are packed a block at a time (musicspace_shared.packing):
bench/snapshot_pack.py at 1M measures a pack in a thread 3.3-3.8 s long with the loop's wake-ups
at most 38-62 ms late, but 13-23 ms late at p99 (each switch of the lock waits out the 5 ms
switch interval), where a forked child leaves them 3.9 ms late at p99 (the fork itself: 46 ms).
A child made by fork reads the same heap (copy-on-write: only the pages whose reference counts it
touches are copied, for the length of the save: 1,554 MB at its peak in that bench, 2,135 MB
before session 24's packing) and holds a lock of its own.

The child runs only `work`: it starts with the calling thread alone and leaves by `os._exit`,
so no other thread's state, atexit handler or finaliser runs there. `work` must not use what
other threads hold: a database connection, a Chroma client, a lock taken elsewhere.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable

from musicspace_shared.logs import log_fields

logger = logging.getLogger("musicspace.forked")

_TRUE, _FALSE, _FAILED = 0, 1, 2  # the child's exit codes


def run_forked(work: Callable[[], bool]) -> bool:
    """`work()` in a forked child; its result (or False when it raised, with the traceback on
    stderr). Blocks the calling thread until the child exits: call it from a worker thread.
    Where there is no fork (Windows), `work` runs here."""
    if not hasattr(os, "fork"):
        return work()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = _FAILED
        try:
            code = _TRUE if work() else _FALSE
        except BaseException:  # noqa: BLE001 - reported by the exit code, shown on stderr
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == _FAILED or code < 0:
        logger.warning("forked work failed", extra=log_fields(exit_code=code))
    return code == _TRUE
