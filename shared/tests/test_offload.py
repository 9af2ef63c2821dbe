"""The rebuild worker: runs off the serving process, and never outlives it."""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time

from musicspace_shared.offload import ProcessOffload


def test_runs_a_function_in_another_process():
    offload = ProcessOffload()
    try:
        assert asyncio.run(offload.run(os.getpid)) != os.getpid()
    finally:
        offload.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is gone, only not yet reaped
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_the_worker_exits_when_its_service_is_killed():
    service = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import asyncio, os, time
                from musicspace_shared.offload import ProcessOffload
                print(asyncio.run(ProcessOffload().run(os.getpid)), flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    worker = int(service.stdout.readline())
    assert _alive(worker)
    service.send_signal(signal.SIGKILL)  # no chance to stop its pool
    service.wait()
    deadline = time.monotonic() + 10
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker)
