"""bench/llm_inproc.py: a search's stages in process, on a catalog file of any size."""

from __future__ import annotations

from bench.llm_inproc import run
from musicspace_cli.demo_data import DEMO_CATALOG


def test_stages_are_timed_for_every_query_and_the_profile_sees_the_ranking() -> None:
    result = run(DEMO_CATALOG, n_queries=6, profile=2)
    assert result["tracks"] > 20_000 and result["queries"] == 6
    assert result["neighbours"] == "none (exact)"  # the demo is below ANN_MIN_TRACKS
    assert set(result["stages"]) == {"prepare", "embed", "rank", "explain"}
    assert all(stage["p99_ms"] >= stage["p50_ms"] > 0 for stage in result["stages"].values())
    assert set(result["total_by_kind"]) == {"description", "typed"}
    assert "query.py" in result["profile"] and "(rank)" in result["profile"]
