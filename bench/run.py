"""`make bench`: run every bench/bench_*.py and write bench/results/<name>.json.

    python bench/run.py [NAME ...] [--quick] [--list]

Each module exposes `run(context) -> dict` (context: bench/context.py). The JSON holds the
module's dict under "result" plus when, how long, and the machine it ran on. A benchmark that
raises is recorded with its error and the others still run; the exit status says so.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from bench.context import BenchContext  # noqa: E402

RESULTS = BENCH / "results"


def write_result(name: str, record: dict[str, Any]) -> Path:
    """bench/results/<name>.json: what a benchmark (or a bench script run alone) measured."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return out


def discover() -> dict[str, Path]:
    return {path.stem.removeprefix("bench_"): path for path in sorted(BENCH.glob("bench_*.py"))}


def _load(name: str, path: Path):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(f"bench.bench_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> None:
    """Run the named benchmarks (argv: command-line words; default sys.argv)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument(
        "--quick", action="store_true", help="short runs (smoke test of the benchmarks)"
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    available = discover()
    if args.list:
        print("\n".join(available))
        return
    unknown = set(args.names) - set(available)
    if unknown:
        parser.error(
            f"unknown benchmark(s): {', '.join(sorted(unknown))}; have: {', '.join(available)}"
        )
    RESULTS.mkdir(exist_ok=True)
    context = BenchContext(quick=args.quick)
    failed = []
    try:
        for name in args.names or list(available):
            print(f"== bench {name}", flush=True)
            record = {
                "name": name,
                "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "quick": args.quick,
                "machine": context.machine(),
            }
            started = time.monotonic()
            try:
                record["result"] = _load(name, available[name]).run(context)
            except Exception as exc:  # noqa: BLE001 - recorded, and the other benchmarks still run
                traceback.print_exc()
                record["error"] = f"{type(exc).__name__}: {exc}"
                failed.append(name)
            record["seconds"] = round(time.monotonic() - started, 1)
            out = write_result(name, record)
            print(f"   -> {out.relative_to(BENCH.parent)} ({record['seconds']}s)", flush=True)
    finally:
        context.close()
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
