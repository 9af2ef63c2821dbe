"""bench/llm_restore.py: the llm's two restores, timed in fresh processes."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

from musicspace_cli.demo_data import DEMO_CATALOG

ROOT = Path(__file__).resolve().parents[1]


def test_both_restores_give_back_every_track_the_snapshot_mapping_its_vectors(
    tmp_path: Path,
) -> None:
    catalog = tmp_path / "catalog.csv.gz"
    with gzip.open(DEMO_CATALOG, "rt") as source, gzip.open(catalog, "wt") as target:
        target.writelines(line for _, line in zip(range(2001), source, strict=False))
    out = tmp_path / "llm_restore.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "llm_restore.py"),
            "--catalog",
            str(catalog),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    result = json.loads(out.read_text())
    tracks = result["prepare"]["tracks"]
    assert 1900 <= tracks <= 2000
    assert result["snapshot"]["tracks"] == result["rows"]["tracks"] == tracks
    assert result["snapshot"]["vectors_mapped"] and not result["rows"]["vectors_mapped"]
    for kind in ("snapshot", "rows"):
        assert result[kind]["total_s"] > 0 and result[kind]["memory_mb"]["VmRSS"] > 0
