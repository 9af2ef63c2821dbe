"""The rebuild worker: runs off the serving process, and never outlives it."""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from musicspace_shared import saved_state
from musicspace_shared.offload import ProcessOffload
from musicspace_shared.packing import FORMAT, Packed


def test_runs_a_function_in_another_process():
    offload = ProcessOffload()
    try:
        assert asyncio.run(offload.run(os.getpid)) != os.getpid()
    finally:
        offload.close()


def test_a_fresh_worker_each_run_leaves_no_worker_holding_the_last_run():
    async def two_runs() -> tuple[int, int, list[int]]:
        offload = ProcessOffload(fresh_worker_each_run=True)
        try:
            first = await offload.run(os.getpid)
            second = await offload.run(os.getpid)
            return first, second, list(offload._pool._processes)  # noqa: SLF001
        finally:
            offload.close()

    first, second, workers = asyncio.run(two_runs())
    assert first != second and os.getpid() not in (first, second)
    deadline = time.monotonic() + 10
    while _alive(first) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(first)  # it exited once its result was sent
    assert first not in workers


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


def _catalog_like() -> dict[str, object]:
    ids = [f"t{i:05d}" for i in range(5000)]
    return {
        "ids": ids,
        "again": ids,  # the same list twice stays one object
        "dates": [None if i % 7 else f"19{i % 100:02d}" for i in range(5000)],
        "index": {t: i for i, t in enumerate(ids)},
        "short": ["a", None],
        "mixed": [1, "a"] * 3000,
    }


def test_results_come_back_equal_and_shared_once():
    offload = ProcessOffload()
    try:
        result = asyncio.run(offload.run(_catalog_like))
    finally:
        offload.close()
    assert result == _catalog_like()
    assert result["again"] is result["ids"]


def _catalog_like_packed_and_saved(path: str) -> Packed[dict[str, object]]:
    packed = Packed(_catalog_like())
    saved_state.save(Path(path), {"built": "here"}, packed, version=1)
    return packed


def test_a_result_packed_once_comes_back_and_is_saved_as_the_object(tmp_path):
    """What a worker packs once to keep on the volume and to send: both load as the object."""
    path = tmp_path / "state.bin"
    offload = ProcessOffload()
    try:
        result = asyncio.run(offload.run(_catalog_like_packed_and_saved, str(path)))
    finally:
        offload.close()
    assert result == _catalog_like() and result["again"] is result["ids"]
    saved = saved_state.load(path, lambda header: None, version=1)
    assert saved == _catalog_like() and saved["again"] is saved["ids"]
    assert saved_state.read_header(path) == {"built": "here", "format": 1, "packing": FORMAT}


def _sleep_and_return_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def test_close_stops_a_worker_in_the_middle_of_a_run():
    async def start_then_close() -> int:
        offload = ProcessOffload()
        assert await offload.run(os.getpid)  # the worker is up
        worker = next(iter(offload._pool._processes))  # noqa: SLF001
        run = asyncio.ensure_future(offload.run(_sleep_and_return_pid, 60))
        await asyncio.sleep(0.5)  # the worker is now sleeping inside the run
        offload.close()
        run.cancel()
        return worker

    worker = asyncio.run(start_then_close())
    deadline = time.monotonic() + 10
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker)
