"""bench/snapshot_pack.py: the llm's snapshot packed beside a ticking loop, three ways."""

from __future__ import annotations

from bench.snapshot_pack import run
from musicspace_cli.demo_data import DEMO_CATALOG


def test_the_snapshot_is_packed_in_a_thread_and_a_child_and_loads_back_the_same() -> None:
    result = run(DEMO_CATALOG)
    assert result["tracks"] > 20_000 and result["packed_mb"] > 1
    assert result["round_trip"] is True
    assert result["pack_in_forked_child"]["saved"] is True
    assert result["pack_in_forked_child"]["child_private_dirty_peak_mb"] > 0  # it was sampled
    for way in ("pack_in_thread", "pack_in_forked_child", "load_in_thread"):
        figures = result[way]
        assert figures["seconds"] > 0
        assert figures["loop_late_max_ms"] >= figures["loop_late_p99_ms"] >= 0
