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


def test_recommend_latency_loads_healthz_gateway_and_direct_and_judges_the_goal() -> None:
    """bench_m1 and bench_m3 share it: the floor, the route through the gateway and direct."""
    from types import SimpleNamespace

    from bench.context import BenchContext

    loads: list[list] = []

    class Context(BenchContext):
        def __init__(self) -> None:
            self._stack = SimpleNamespace(  # type: ignore[assignment]
                health_url="https://gw/_bench/healthz",
                gateway_url="https://gw",
                service_urls={"m3": "http://127.0.0.1:9"},
            )

        def load(self, calls, **kwargs):  # type: ignore[no-untyped-def]
            loads.append(calls)
            return LoadResult(seconds=1.0, samples=[(calls[0].label, 200, 40.0)])

    result = Context().recommend_latency(
        "m3", [1, 2], limit=20, seconds=1, concurrency=4, goal_p99_ms=50.0
    )
    assert [call.url for call in loads[0]] == ["https://gw/_bench/healthz"]
    assert [call.url for call in loads[1]] == ["https://gw/api/m3/recommend"] * 2
    assert [call.url for call in loads[2]] == ["http://127.0.0.1:9/api/m3/recommend"] * 2
    assert loads[1][1].json == {"user_id": 2, "limit": 20}
    assert set(result) == {"healthz_gateway", "recommend_gateway", "recommend_direct", "goal_met"}
    assert result["goal_met"] is True


def test_read_db_runs_an_async_read_from_sync_code(mariadb_url: str) -> None:
    import sqlalchemy as sa

    from bench.context import read_db

    async def read(session) -> int:  # type: ignore[no-untyped-def]
        return (await session.execute(sa.text("SELECT 41 + 1"))).scalar_one()

    assert read_db(mariadb_url, read) == 42
