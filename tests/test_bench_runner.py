"""`make bench` discovers bench/bench_*.py; each must expose run(context)."""

from __future__ import annotations

import ast
from pathlib import Path

from bench.context import LoadResult
from bench.run import discover

ROOT = Path(__file__).resolve().parent.parent


def test_every_benchmark_module_exposes_run_with_a_context() -> None:
    modules = discover()
    assert "gateway" in modules
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        runs = [
            node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "run"
        ]
        assert runs, f"bench_{name}.py has no top-level run(context)"
        assert len(runs[0].args.args) == 1, f"bench_{name}.run takes exactly the context"


def test_bench_results_are_ignored_but_their_folder_is_kept() -> None:
    assert (ROOT / "bench" / "results" / ".gitkeep").exists()
    assert "bench/results/*.json" in (ROOT / ".gitignore").read_text()


def test_load_summary_reports_percentiles_and_errors_per_label() -> None:
    samples = [("a", 200, float(ms)) for ms in range(1, 101)] + [
        ("b", 503, 5.0),
        ("b", 0, 7.0),
        ("b", 429, 1.0),
    ]
    summary = LoadResult(seconds=2.0, samples=samples).summary()
    assert summary["requests"] == 103 and summary["errors"] == 3
    assert (
        summary["by_label"]["a"]["p50_ms"] == 51.0 and summary["by_label"]["a"]["p99_ms"] == 100.0
    )
    assert summary["by_label"]["a"]["errors"] == 0
    assert summary["by_label"]["b"]["statuses"] == {"0": 1, "429": 1, "503": 1}
