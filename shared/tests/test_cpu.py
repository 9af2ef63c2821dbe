"""The CPU pool: background pools run below the request threads' OS priority."""

from __future__ import annotations

import os
import threading

from musicspace_shared.cpu import CpuPool


def _priority() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


async def test_a_pool_with_niceness_runs_its_threads_below_the_process_priority() -> None:
    here = _priority()
    background, requests = CpuPool(1, name="bg", niceness=5), CpuPool(1, name="req")
    try:
        assert await background.run(_priority) == min(here + 5, 19)
        assert await requests.run(_priority) == here
        assert _priority() == here  # the caller's thread is untouched
    finally:
        background.close()
        requests.close()
