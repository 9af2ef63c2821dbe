"""The llm's snapshot packed and loaded beside a ticking event loop, on a catalog of any size:
how long each holds the serving process back (issue 18).

    python bench/snapshot_pack.py --catalog var/bench/scale/<key>/data/catalog.csv.gz

Builds the TrackIndex as bench/llm_inproc.py does (random vectors, the name indexes built) and
gives each row an updated_at, as a database load does (a catalog file has none). Then what
saved_index.save packs (the rows and the name indexes; the vectors' .npy is written apart) is
packed while an asyncio loop on the main thread asks to wake every 5 ms: in a worker thread of
this process, and in a forked child from a worker thread (musicspace_shared.forked, as the
service saves; the child's Private_Dirty sampled every 50 ms: the pages the pack copied); then
the file is loaded back in a worker thread. For each: the wall time, and how late the loop's
wake-ups came (max and p99: a late wake-up is a stretch the loop could not run). Writes
bench/results/snapshot_pack.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.llm_inproc import build_index  # noqa: E402
from bench.run import write_result  # noqa: E402

TICK_S = 0.005


def _beside_ticking_loop(work: Callable[[], Any]) -> tuple[Any, float, list[float]]:
    """`work()` in a worker thread while the loop ticks: its result, its seconds, and how late
    each tick came (seconds)."""
    lateness: list[float] = []

    async def tick(done: threading.Event) -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(TICK_S)
            now = time.perf_counter()
            lateness.append(max(now - last - TICK_S, 0.0))
            last = now

    async def main() -> tuple[Any, float]:
        done = threading.Event()
        ticking = asyncio.create_task(tick(done))
        started = time.perf_counter()
        try:
            return await asyncio.to_thread(work), time.perf_counter() - started
        finally:
            done.set()
            await ticking

    out, seconds = asyncio.run(main())
    return out, seconds, lateness


def _figures(seconds: float, lateness: list[float]) -> dict[str, float]:
    late = np.array(lateness or [0.0]) * 1000
    return {
        "seconds": round(seconds, 2),
        "loop_late_max_ms": round(float(late.max()), 1),
        "loop_late_p99_ms": round(float(np.percentile(late, 99)), 1),
    }


class _ChildDirtyPeak:
    """The largest Private_Dirty of this process' children while it runs (MB)."""

    def __init__(self) -> None:
        self.peak_mb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> _ChildDirtyPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            for child in _children():
                try:
                    with open(f"/proc/{child}/smaps_rollup") as rollup:
                        for line in rollup:
                            if line.startswith("Private_Dirty:"):
                                self.peak_mb = max(self.peak_mb, int(line.split()[1]) // 1024)
                except OSError:
                    pass  # gone already


def _children() -> list[str]:
    out = []
    for task in os.listdir("/proc/self/task"):  # a fork from a worker thread is that task's child
        try:
            with open(f"/proc/self/task/{task}/children") as children:
                out += children.read().split()
        except OSError:
            pass
    return out


def run(catalog: Path) -> dict[str, Any]:
    from musicspace_llm.repository import CatalogRows
    from musicspace_shared import packing
    from musicspace_shared.forked import run_forked
    from musicspace_shared.heap import settle

    index = build_index(catalog)
    frame = index.frame
    if not frame.updated_at:
        start = datetime(2026, 1, 1, tzinfo=UTC)
        frame.updated_at = [start + timedelta(seconds=7 * i) for i in range(len(frame))]
    state = {
        "rows": CatalogRows(frame, index.decades, max(frame.updated_at)),
        "names": index.name_parts(),
    }
    result: dict[str, Any] = {"tracks": len(frame)}
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "state.pkl"

        def pack() -> bool:
            with path.open("wb") as file:
                packing.pack_into(state, file)
            return True

        settle()  # as the service does once its snapshot is built: the collector skips it
        _, seconds, late = _beside_ticking_loop(pack)
        result["pack_in_thread"] = _figures(seconds, late)
        result["packed_mb"] = round(path.stat().st_size / 2**20, 1)
        path.unlink()
        with _ChildDirtyPeak() as dirty:
            saved, seconds, late = _beside_ticking_loop(lambda: run_forked(pack))
        result["pack_in_forked_child"] = {
            **_figures(seconds, late),
            "saved": saved,
            "child_private_dirty_peak_mb": dirty.peak_mb,
        }

        def load() -> Any:
            with path.open("rb") as file:
                return packing.unpack_from(file)

        loaded, seconds, late = _beside_ticking_loop(load)
        result["load_in_thread"] = _figures(seconds, late)
    rows = loaded["rows"]
    result["round_trip"] = (
        rows.frame.titles == frame.titles
        and rows.frame.updated_at == frame.updated_at
        and loaded["names"].keys() == state["names"].keys()
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, required=True)
    args = parser.parse_args()
    result = run(args.catalog)
    print(json.dumps(result, indent=2))
    write_result("snapshot_pack", result)


if __name__ == "__main__":
    main()
