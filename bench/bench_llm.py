"""Benchmark llm (issue 7): search latency at 8 concurrent clients, offline embedder.

Measured in one run against the bench stack (bench/context.py: full demo catalog in MariaDB,
the five services and Traefik as real processes; the llm index is built on its first start
and persisted in Chroma under var/bench/models/LLM):
- POST /api/llm/search sent to the llm service directly, 8 closed-loop clients, two mixes:
  `unique`: every request a query never seen before, so each pays the query embedding: half
  descriptions (generated from templates, English and Korean), half what people type into a
  search box (`typed_queries`: titles and "artist title" from the catalog, some with a typo,
  artist names in Latin and Hangul, "over N bpm", "from the 80s", "like <artist>");
  `repeated`: a fixed set of 40 queries, served mostly from the query-embedding cache;
- the same `unique` mix through the gateway (https, Traefik): the goal's figure;
- the service's /healthz at the same concurrency: the floor any request pays on this machine;
- in-process wall time per stage (embed, understand, rank) for the unique queries.
Goal: search p99 <= 100 ms offline through the gateway at 8 concurrent clients.

`run(context) -> dict` for bench/run.py; `python bench/run.py llm [--quick]` runs it alone
and writes bench/results/llm.json.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Sequence
from typing import Any

import httpx

from bench.context import BenchContext, Call, process_cpu_s

CONCURRENCY = 8
GOAL_P99_MS = 100.0

_EN_MOODS = [
    "chill",
    "energetic",
    "sad",
    "happy",
    "acoustic",
    "danceable",
    "calm",
    "dark",
    "upbeat",
    "mellow",
    "live",
    "instrumental",
]
_EN_STYLES = [
    "synthpop",
    "hard rock",
    "trap",
    "neo soul",
    "reggaeton",
    "electro house",
    "indie pop",
    "classic rock",
    "latin pop",
    "big room",
    "gangster rap",
    "new jack swing",
    "tropical",
    "hip hop",
]
_EN_CONTEXTS = [
    "for a late night drive",
    "for the gym",
    "for studying",
    "for a rainy day",
    "for a party",
    "from the 80s",
    "for a slow sunday",
    "to fall asleep",
]
_KO_MOODS = ["잔잔한", "신나는", "슬픈", "밝은", "어쿠스틱", "차분한", "강렬한", "행복한"]
_KO_STYLES = [
    "신스팝",
    "하드 록",
    "트랩",
    "네오 소울",
    "레게톤",
    "일렉트로 하우스",
    "인디 팝",
    "힙합",
    "라틴 팝",
    "댄스 팝",
]
_KO_CONTEXTS = ["드라이브할 때", "운동할 때", "공부할 때", "비 오는 날", "파티에서", "새벽에"]
_EN_ASKS = ["", "some ", "play me ", "songs like "]
_KO_ASKS = ["", " 추천해줘", " 노래", " 플레이리스트"]


def unique_queries(n: int, seed: int = 7) -> list[str]:
    """n distinct, realistic queries (two thirds English, one third Korean), deterministic."""
    en = [
        f"{a}{m} {s} {c}"
        for a, m, s, c in itertools.product(_EN_ASKS, _EN_MOODS, _EN_STYLES, _EN_CONTEXTS)
    ]
    ko = [
        f"{c} 듣는 {m} {s}{a}"
        for a, m, s, c in itertools.product(_KO_ASKS, _KO_MOODS, _KO_STYLES, _KO_CONTEXTS)
    ]
    if n > len(en) + len(ko):
        raise ValueError(f"only {len(en) + len(ko)} distinct queries")
    rng = random.Random(seed)
    rng.shuffle(en)
    rng.shuffle(ko)
    mixed = [
        q
        for pair in itertools.zip_longest(en[: 2 * n // 3 + 1], ko[: n // 3 + 1])
        for q in pair
        if q
    ]
    return mixed[:n]


_KO_ARTISTS = ["드레이크", "퀸", "에미넴", "방탄소년단", "콜드플레이", "아리아나 그란데", "샤키라"]
_KO_ARTIST_ASKS = ["", " 노래", " 노래 틀어줘", " 노래 모음"]
_EN_NUMBERS = ["songs over {n} bpm", "tracks under {m} bpm", "{d}s rock", "hip hop from the {d}s"]
_KO_NUMBERS = ["템포 {m} 이하", "BPM {n} 이상", "{d}년대 록 음악"]


def typed_queries(
    n: int, seed: int = 11, catalog: tuple[Sequence[str], Sequence[str]] | None = None
) -> list[str]:
    """n distinct search-box queries: known items (some with a typo), artists, numbers, likes.

    `catalog`: the (titles, artists) of the tracks to draw from, one pair per track; the demo
    catalog by default."""
    if catalog is None:
        from musicspace_cli.demo_data import DEMO_CATALOG
        from musicspace_shared.catalog import read_catalog_csv

        frame = read_catalog_csv(DEMO_CATALOG)
        catalog = (frame.titles, frame.artists)
    titles, track_artists = catalog
    rng = random.Random(seed)
    # Kept in the order drawn: a set's order changes with each process's string hashing, which
    # made two runs (and base against head) send different queries.
    out: dict[str, None] = {}
    artists = sorted(set(track_artists))
    while len(out) < n:
        i = rng.randrange(len(titles))
        title, artist = titles[i], track_artists[i]
        kind = rng.randrange(8)
        if kind == 0:
            out.setdefault(title)
        elif kind == 1:
            out.setdefault(f"{title} {artist}")
        elif kind == 2:
            out.setdefault(f"{artist} {title}".lower())
        elif kind == 3 and len(title) > 4:
            j = rng.randrange(1, len(title) - 2)
            out.setdefault(
                title[:j] + title[j + 1] + title[j] + title[j + 2 :]
            )  # two letters swapped
        elif kind == 4:
            out.setdefault(
                f"{rng.choice(['songs by', 'canciones de', 'best of'])} {rng.choice(artists)}"
            )
        elif kind == 5:
            out.setdefault(
                rng.choice(_KO_ARTISTS) + rng.choice(_KO_ARTIST_ASKS) + " " * rng.randrange(3)
            )
        elif kind == 6:
            template = rng.choice(_EN_NUMBERS + _KO_NUMBERS)
            d = rng.choice([60, 70, 80, 90])
            out.setdefault(
                template.format(n=rng.randrange(120, 180), m=rng.randrange(60, 100), d=d)
            )
        else:
            out.setdefault(f"songs like {rng.choice(artists)}")
    queries = list(out)
    rng.shuffle(queries)
    return queries


def _wait_ready(url: str, timeout_s: float) -> float:
    """Wait for the llm index (the first start embeds the whole catalog); seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise TimeoutError(f"llm not ready after {timeout_s:.0f}s")


def _stages(queries: list[str]) -> dict[str, Any]:
    """Per-stage wall ms in this process over a catalog-sized random index (no DB, no HTTP)."""
    import asyncio

    import numpy as np
    from threadpoolctl import threadpool_limits

    from musicspace_cli.demo_data import DEMO_CATALOG
    from musicspace_llm.embeddings import OfflineEmbedder
    from musicspace_llm.index import TrackIndex
    from musicspace_llm.query import embed_texts, prepare, rank
    from musicspace_llm.understanding import QueryUnderstanding
    from musicspace_shared.catalog import read_catalog_csv

    frame = read_catalog_csv(DEMO_CATALOG)
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((len(frame), 512)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = TrackIndex(
        frame=frame,
        decades=np.zeros(len(frame), dtype=np.int64),
        vectors=vectors,
    )
    embedder = OfflineEmbedder()
    understanding = asyncio.run(QueryUnderstanding.build(embedder))
    started = time.perf_counter()
    index.warm()  # name indexes and projection: built once per index snapshot
    snapshot_indexes_ms = (time.perf_counter() - started) * 1000
    totals: dict[str, list[float]] = {"prepare": [], "embed": [], "rank": []}
    # One BLAS thread, as the service runs (its __main__): spinning OpenBLAS workers on a
    # shared host made the small products here several times slower than in the service.
    with threadpool_limits(limits=1):
        for query in queries:
            t0 = time.perf_counter()
            prepared = prepare(query, index)
            t1 = time.perf_counter()
            vecs = embedder.encode(embed_texts(understanding, prepared))
            t2 = time.perf_counter()
            rank(index, understanding, prepared, vecs, limit=10)  # understanding, names, ranking
            t3 = time.perf_counter()
            for key, value in (("prepare", t1 - t0), ("embed", t2 - t1), ("rank", t3 - t2)):
                totals[key].append(value * 1000)
    return {
        "snapshot_indexes_build_ms": round(snapshot_indexes_ms, 1),
        **{
            k: {
                "mean_ms": round(float(np.mean(v)), 2),
                "p99_ms": round(float(np.percentile(v, 99)), 2),
            }
            for k, v in totals.items()
        },
    }


def run(context: BenchContext) -> dict[str, Any]:
    stack = context.stack()
    direct = stack.service_urls["llm"]
    waited = _wait_ready(direct, timeout_s=3600)
    seconds = 5 if context.quick else 20
    count = 400 if context.quick else 2500
    descriptions, typed = unique_queries(count), typed_queries(count)
    fresh = [q for pair in zip(descriptions, typed, strict=True) for q in pair]

    def search(base: str, q: str, label: str) -> Call:
        return Call(label, "POST", base + "/api/llm/search", {"query": q, "limit": 10})

    repeated = [search(direct, q, "search_repeated") for q in fresh[-40:]]
    results: dict[str, Any] = {"concurrency": CONCURRENCY, "index_wait_s": round(waited, 1)}
    results["healthz"] = context.load(
        [Call("healthz", "GET", direct + "/healthz")], concurrency=CONCURRENCY, seconds=seconds
    ).summary()
    pid = stack.pids.get("llm")
    cpu_before = process_cpu_s(pid) if pid else None
    results["search_unique"] = context.load(
        [search(direct, q, "search_unique") for q in fresh[:count]],
        concurrency=CONCURRENCY,
        seconds=seconds,
        warmup=0,
    ).summary()
    if pid and cpu_before is not None:
        # The llm process's own CPU per search (all its threads), steadier than latency on a
        # shared machine: what each search costs, whatever else runs.
        spent = process_cpu_s(pid) - cpu_before
        results["search_unique"]["server_cpu_ms_per_request"] = round(
            spent * 1000 / max(1, results["search_unique"]["requests"]), 2
        )
    results["search_repeated"] = context.load(
        repeated, concurrency=CONCURRENCY, seconds=seconds, warmup=40
    ).summary()
    results["search_unique_gateway"] = context.load(
        [search(stack.gateway_url, q, "search_unique_gateway") for q in fresh[count : 2 * count]],
        concurrency=CONCURRENCY,
        seconds=seconds,
        warmup=0,
    ).summary()
    results["stages_in_process"] = _stages(fresh[:100] if context.quick else fresh[:300])
    p99 = results["search_unique_gateway"]["p99_ms"]
    results["goal"] = {
        "search_p99_ms_max": GOAL_P99_MS,
        "measured_p99_ms": p99,
        "met": p99 is not None and p99 <= GOAL_P99_MS,
    }
    results["rss_mb"] = stack.rss_mb()
    return results
