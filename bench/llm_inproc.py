"""llm search, in process, on a catalog of any size: where a query's time goes (issue 18).

    python bench/llm_inproc.py --catalog var/bench/scale/<key>/data/catalog.csv.gz \\
        [--queries 200] [--profile 40]

Reads the catalog file (`musicspace generate` writes one of any size), gives every track a
random unit vector of 512 dimensions (the offline embedder's size; what the vectors hold does
not change the work a query does) and builds the TrackIndex as a snapshot of the service
would. Past ann.ANN_MIN_TRACKS the index answers the nearest-neighbour part with ANN_DEPTH
random rows (`--neighbours random`): Chroma's HNSW query is measured by bench_scale_llm, not
here. Then the bench's query mix (half descriptions, half typed: titles, artists, numbers,
"like <artist>", bench_llm) is prepared, embedded, ranked and explained one query at a time
on one BLAS thread, as the service does, and the wall time of each stage is reported (p50,
p99, mean). `--profile N` ranks N more queries under cProfile and prints the top functions.
Writes bench/results/llm_inproc.json.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.bench_llm import typed_queries, unique_queries  # noqa: E402
from bench.run import write_result  # noqa: E402

DIM = 512


class RandomNeighbours:
    """Stands in for Chroma's HNSW query: n distinct random rows, at no cost."""

    def __init__(self, rows: int, seed: int = 5) -> None:
        self.rows = rows
        self.rng = np.random.default_rng(seed)

    def __call__(self, query: np.ndarray, n: int) -> np.ndarray:
        return np.unique(self.rng.integers(0, self.rows, size=n))


def build_index(catalog: Path, seed: int = 7) -> Any:
    from musicspace_llm.ann import ANN_MIN_TRACKS
    from musicspace_llm.documents import decade
    from musicspace_llm.index import TrackIndex
    from musicspace_shared.catalog import read_catalog_csv

    frame = read_catalog_csv(catalog)
    rng = np.random.default_rng(seed)
    vectors = np.empty((len(frame), DIM), dtype=np.float32)
    for start in range(0, len(frame), 100_000):  # a block at a time: no float64 copy of all
        block = rng.standard_normal((min(100_000, len(frame) - start), DIM), dtype=np.float32)
        vectors[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    decades = np.array([decade(d) or 0 for d in frame.release_dates], dtype=np.int64)
    index = TrackIndex(frame=frame, decades=decades, vectors=vectors)
    if len(index) >= ANN_MIN_TRACKS:
        index.neighbours = RandomNeighbours(len(index))
    index.warm()
    return index


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p99_ms": round(float(np.percentile(values, 99)), 2),
        "mean_ms": round(float(np.mean(values)), 2),
    }


def run(catalog: Path, n_queries: int, profile: int) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    from musicspace_llm.embeddings import OfflineEmbedder
    from musicspace_llm.query import embed_texts, prepare, rank
    from musicspace_llm.reasons import compose_reason
    from musicspace_llm.understanding import QueryUnderstanding

    started = time.perf_counter()
    index = build_index(catalog)
    built_s = time.perf_counter() - started
    embedder = OfflineEmbedder()
    understanding = asyncio.run(QueryUnderstanding.build(embedder))
    half = (n_queries + profile + 1) // 2
    descriptions = unique_queries(half)
    typed = typed_queries(half, catalog=(index.frame.titles, index.frame.artists))
    queries = [q for pair in zip(descriptions, typed, strict=True) for q in pair]
    stages: dict[str, list[float]] = {"prepare": [], "embed": [], "rank": [], "explain": []}
    kinds: dict[str, list[float]] = {"description": [], "typed": []}

    def one(query: str) -> dict[str, float]:
        t0 = time.perf_counter()
        prepared = prepare(query, index)
        t1 = time.perf_counter()
        vectors = embedder.encode(embed_texts(understanding, prepared))
        t2 = time.perf_counter()
        ranked = rank(index, understanding, prepared, vectors, limit=10)
        t3 = time.perf_counter()
        for m in ranked.matches:
            compose_reason(index, m, ranked.intent)
        t4 = time.perf_counter()
        return {"prepare": t1 - t0, "embed": t2 - t1, "rank": t3 - t2, "explain": t4 - t3}

    with threadpool_limits(limits=1):  # one BLAS thread, as the service runs
        for i, query in enumerate(queries[:n_queries]):
            took = one(query)
            for key, value in took.items():
                stages[key].append(value * 1000)
            kinds["description" if i % 2 == 0 else "typed"].append(sum(took.values()) * 1000)
        report = ""
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for query in queries[n_queries : n_queries + profile]:
                one(query)
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(45)
            report = out.getvalue()
    return {
        "tracks": len(index),
        "index_build_s": round(built_s, 1),
        "neighbours": "random rows" if index.neighbours is not None else "none (exact)",
        "queries": len(stages["rank"]),
        "stages": {k: _summary(v) for k, v in stages.items()},
        "total_by_kind": {k: _summary(v) for k, v in kinds.items() if v},
        "profile": report,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--profile", type=int, default=0)
    args = parser.parse_args()
    result = run(args.catalog, args.queries, args.profile)
    print(result.pop("profile"))
    print(json.dumps(result, indent=2))
    write_result("llm_inproc", result)


if __name__ == "__main__":
    main()
