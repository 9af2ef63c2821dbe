"""llm restore, in process, on a catalog of any size: the index saved on the volume against the
rows kept in Chroma (issue 18: at 1M tracks a restore from Chroma took 196 s and 9 GB).

    python bench/llm_restore.py --catalog var/bench/scale/<key>/data/catalog.csv.gz

Builds the TrackIndex of the catalog with random unit vectors (bench/llm_inproc.py), saves it
as the service does (musicspace_llm.saved_index) and writes each track's row as the collection
keeps it (repository.row_record). Then two fresh processes restore it, each timed by stage with
its resident memory (anonymous and file-backed) once warm:
- `snapshot`: saved_index.load (rows unpacked, vectors memory-mapped), the TrackIndex, warm;
- `rows`: the rows parsed from their JSON records (rows_from_records, what a restore from the
  collection does once Chroma has paged them out; that paging is not timed here) with the
  vectors read into memory, the TrackIndex, warm.
Writes bench/results/llm_restore.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import pickle
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

COLLECTION = "tracks__bench__restore__512"
MARK = datetime(2026, 1, 1, tzinfo=UTC)


def memory() -> dict[str, float]:
    """This process's resident memory in MB: all, anonymous, file-backed (mapped files)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            fields[name] = round(int(value.split()[0]) / 1024, 1)
    return fields


def _settings(folder: Path) -> Any:
    from musicspace_llm.settings import Settings

    return Settings(database_url="sqlite+aiosqlite:///unused.db", model_root=folder)


def prepare(catalog: Path, folder: Path) -> dict[str, Any]:
    from bench.llm_inproc import build_index
    from musicspace_llm import saved_index
    from musicspace_llm.repository import row_record

    started = time.perf_counter()
    index = build_index(catalog)
    built = time.perf_counter() - started
    started = time.perf_counter()
    assert saved_index.save(_settings(folder), COLLECTION, "bench", index, MARK)
    saved = time.perf_counter() - started
    records = [row_record(index.frame, i) for i in range(len(index))]
    with (folder / "records.pkl").open("wb") as handle:
        pickle.dump((index.frame.track_ids, records), handle, protocol=5)
    np.save(folder / "vectors.npy", index.vectors)
    files = {p.name: round(p.stat().st_size / 2**20, 1) for p in folder.rglob("*") if p.is_file()}
    return {
        "tracks": len(index),
        "build_s": round(built, 2),
        "save_s": round(saved, 2),
        "files_mb": files,
    }


def restore(kind: str, folder: Path) -> dict[str, Any]:
    from musicspace_llm import saved_index
    from musicspace_llm.index import TrackIndex
    from musicspace_llm.repository import rows_from_records

    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    if kind == "snapshot":
        saved = saved_index.load(
            _settings(folder), COLLECTION, "bench", dim=512, stored=1 << 62, durable=True
        )
        assert saved is not None
        rows, vectors, names = saved.rows, saved.vectors, saved.names
        stages["load_s"] = time.perf_counter() - t0
    else:
        with (folder / "records.pkl").open("rb") as handle:
            ids, records = pickle.load(handle)
        vectors, names = np.load(folder / "vectors.npy"), None
        stages["read_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        rows = rows_from_records(ids, records)
        del ids, records
        stages["parse_s"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    index = TrackIndex(
        frame=rows.frame,
        decades=rows.decades,
        vectors=vectors,
        watermark=rows.watermark,
        names=names,
    )
    index.warm()
    stages["index_and_warm_s"] = time.perf_counter() - t1
    stages["total_s"] = time.perf_counter() - t0
    gc.collect()
    from musicspace_shared.heap import release_free_memory

    release_free_memory()
    return {k: round(v, 2) for k, v in stages.items()} | {
        "tracks": len(index),
        "vectors_mapped": isinstance(index.vectors, np.memmap),
        "memory_mb": memory(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path)
    parser.add_argument("--restore", choices=["snapshot", "rows"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "llm_restore.json")
    args = parser.parse_args()
    if args.restore:
        print(json.dumps(restore(args.restore, args.folder)))
        return
    if args.catalog is None:
        parser.error("--catalog is required")
    with tempfile.TemporaryDirectory(prefix="llm-restore-") as tmp:
        folder = Path(tmp)
        result: dict[str, Any] = {
            "catalog": str(args.catalog),
            "prepare": prepare(args.catalog, folder),
        }
        for kind in ("snapshot", "rows"):
            done = subprocess.run(
                [sys.executable, __file__, "--restore", kind, "--folder", str(folder)],
                check=True,
                capture_output=True,
                text=True,
            )
            result[kind] = json.loads(done.stdout.strip().splitlines()[-1])
            print(kind, json.dumps(result[kind]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["prepare"]))


if __name__ == "__main__":
    main()
