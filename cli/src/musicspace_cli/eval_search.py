"""`musicspace eval search`: llm search against a keyword TF-IDF baseline, per kind of query.

Each query line is {"query", "lang", "kind"?, "relevant": {...}}; a track is relevant when it
meets every part of the rule given: `track_ids` (any of them), `artist` (exact names),
`subgenre`, `genre`, `year` [from, to] (album release year, inclusive) and `features`
{"<feature>": [low, high]} (a track without that feature, or without a release year, fails).
Lines of kind `known_item` (a title or "title artist" typed into the search box) are scored by
the rank of their first relevant track (`mrr@10_known_item`, `hit@1_known_item`); every other
line by precision@10, overall, per language and per kind (a line without `kind` is a plain
query: it counts in `p@10` and `p@10_<lang>` only). The llm index is built in-process from the
catalog with the offline embedder (deterministic, nothing downloaded), exactly as the service
builds it from the DB.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from musicspace_shared.catalog import TrackFrame, read_catalog_csv
from musicspace_shared.features import FEATURES

K = 10
KNOWN_ITEM = "known_item"
_FEATURE_POS = {name: i for i, name in enumerate(FEATURES)}
_RULES = {"track_ids", "artist", "subgenre", "genre", "year", "features"}


def read_queries(path: Path) -> list[dict[str, Any]]:
    queries = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            item = json.loads(line)
            if not isinstance(item.get("query"), str) or not isinstance(item.get("relevant"), dict):
                raise ValueError(f"{path}:{number}: needs a 'query' string and a 'relevant' object")
            unknown = set(item["relevant"]) - _RULES
            if unknown:
                raise ValueError(f"{path}:{number}: unknown relevance rule(s) {sorted(unknown)}")
            queries.append(item)
    return queries


def release_years(frame: TrackFrame) -> np.ndarray:
    """Album release year per track (0 when unknown)."""
    dates = frame.release_dates or [None] * len(frame)
    return np.array(
        [int(d[:4]) if d and len(d) >= 4 and d[:4].isdigit() else 0 for d in dates],
        dtype=np.int64,
    )


def relevant_mask(
    frame: TrackFrame, rule: dict[str, Any], years: np.ndarray | None = None
) -> np.ndarray:
    """Which tracks satisfy every part of a relevance rule."""
    mask = np.ones(len(frame), dtype=bool)
    for key, column in (
        ("track_ids", frame.track_ids),
        ("artist", frame.artists),
        ("subgenre", frame.subgenres),
        ("genre", frame.genres),
    ):
        if key in rule:
            wanted = set(rule[key])
            mask &= np.array([value in wanted for value in column], dtype=bool)
    if "year" in rule:
        low, high = rule["year"]
        years = release_years(frame) if years is None else years
        mask &= (years >= low) & (years <= high)
    for name, (low, high) in (rule.get("features") or {}).items():
        values = frame.features[:, _FEATURE_POS[name]]
        with np.errstate(invalid="ignore"):
            mask &= (values >= low) & (values <= high)
    return mask


def _llm_rankings(frame: TrackFrame, queries: list[dict[str, Any]]) -> list[list[int]]:
    from musicspace_llm.documents import decade
    from musicspace_llm.embeddings import OfflineEmbedder
    from musicspace_llm.indexing import embed_catalog
    from musicspace_llm.query import embed_texts, prepare, rank
    from musicspace_llm.repository import CatalogRows
    from musicspace_llm.understanding import QueryUnderstanding

    dates = frame.release_dates or [None] * len(frame)
    decades = np.array([decade(d) or 0 for d in dates], dtype=np.int64)

    async def build():  # noqa: ANN202
        embedder = OfflineEmbedder()
        index, _ = await embed_catalog(
            CatalogRows(frame, decades, None), embedder=embedder, batch_size=512
        )
        return embedder, index, await QueryUnderstanding.build(embedder)

    embedder, index, understanding = asyncio.run(build())
    rankings = []
    for item in queries:
        prepared = prepare(item["query"], index)
        vectors = embedder.encode(embed_texts(understanding, prepared))
        ranked = rank(index, understanding, prepared, vectors, limit=K)
        rankings.append([m.row for m in ranked.matches])
    return rankings


def _tfidf_rankings(frame: TrackFrame, queries: list[dict[str, Any]]) -> list[list[int]]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [
        " ".join(
            (
                frame.titles[i],
                frame.artists[i],
                frame.albums[i],
                frame.genres[i],
                frame.subgenres[i],
            )
        )
        for i in range(len(frame))
    ]
    vectorizer = TfidfVectorizer(sublinear_tf=True)
    matrix = vectorizer.fit_transform(texts)
    rankings = []
    for item in queries:
        scores = (matrix @ vectorizer.transform([item["query"]]).T).toarray().ravel()
        order = np.lexsort(
            (np.arange(len(scores)), -scores)
        )  # ties by catalog order: deterministic
        rankings.append([int(r) for r in order[:K]])
    return rankings


def score(
    frame: TrackFrame, queries: list[dict[str, Any]], rankings: list[list[int]]
) -> dict[str, float]:
    """p@10 overall / per language / per kind over non-known-item lines; MRR@10 and hit@1 over known items."""
    years = release_years(frame)
    precision: dict[str, list[float]] = defaultdict(list)
    reciprocal: list[float] = []
    for item, ranking in zip(queries, rankings, strict=True):
        mask = relevant_mask(frame, item["relevant"], years)
        if item.get("kind") == KNOWN_ITEM:
            first = next((rank for rank, r in enumerate(ranking[:K], 1) if mask[r]), None)
            reciprocal.append(1.0 / first if first else 0.0)
            continue
        value = sum(bool(mask[r]) for r in ranking[:K]) / K
        precision["p@10"].append(value)
        precision[f"p@10_{item.get('lang') or 'unknown'}"].append(value)
        if item.get("kind"):
            precision[f"p@10_{item['kind']}"].append(value)
    out = {name: round(float(np.mean(values)), 4) for name, values in sorted(precision.items())}
    if reciprocal:
        out["mrr@10_known_item"] = round(float(np.mean(reciprocal)), 4)
        out["hit@1_known_item"] = round(float(np.mean([r == 1.0 for r in reciprocal])), 4)
    return out


def run(*, catalog: Path, queries: Path) -> dict[str, Any]:
    """Per-kind metrics for the llm search and the keyword TF-IDF baseline, same queries."""
    items = read_queries(queries)
    frame = read_catalog_csv(catalog)
    return {
        "llm": score(frame, items, _llm_rankings(frame, items)),
        "keyword_tfidf": score(frame, items, _tfidf_rankings(frame, items)),
    }
