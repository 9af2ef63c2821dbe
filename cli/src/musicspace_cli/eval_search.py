"""`musicspace eval search`: llm search precision@10 against a keyword TF-IDF baseline.

Each query line is {"query", "lang", "relevant": {"subgenre": [...], "genre": [...],
"features": {"<feature>": [low, high]}}}; a track is relevant when it meets every rule given
(a track without a feature fails that feature's range). The llm index is built in-process
from the catalog with the offline embedder (deterministic, nothing downloaded), exactly as
the service builds it from the DB.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from musicspace_shared.catalog import TrackFrame, read_catalog_csv
from musicspace_shared.features import FEATURES

K = 10
_FEATURE_POS = {name: i for i, name in enumerate(FEATURES)}


def read_queries(path: Path) -> list[dict[str, Any]]:
    queries = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            item = json.loads(line)
            if not isinstance(item.get("query"), str) or not isinstance(item.get("relevant"), dict):
                raise ValueError(f"{path}:{number}: needs a 'query' string and a 'relevant' object")
            queries.append(item)
    return queries


def relevant_mask(frame: TrackFrame, rule: dict[str, Any]) -> np.ndarray:
    """Which tracks satisfy every part of a relevance rule."""
    mask = np.ones(len(frame), dtype=bool)
    if "subgenre" in rule:
        wanted = set(rule["subgenre"])
        mask &= np.array([s in wanted for s in frame.subgenres], dtype=bool)
    if "genre" in rule:
        wanted = set(rule["genre"])
        mask &= np.array([g in wanted for g in frame.genres], dtype=bool)
    for name, (low, high) in (rule.get("features") or {}).items():
        column = frame.features[:, _FEATURE_POS[name]]
        with np.errstate(invalid="ignore"):
            mask &= (column >= low) & (column <= high)
    return mask


def _decades(catalog: Path, frame: TrackFrame) -> np.ndarray:
    from musicspace_llm.documents import decade

    opener = gzip.open if str(catalog).endswith(".gz") else open
    dates: dict[str, str] = {}
    with opener(catalog, "rt", encoding="utf-8", newline="") as handle:  # type: ignore[operator]
        for row in csv.DictReader(handle):
            dates.setdefault(row.get("track_id") or "", row.get("track_album_release_date") or "")
    return np.array([decade(dates.get(t)) or 0 for t in frame.track_ids], dtype=np.int64)


def _llm_rankings(
    catalog: Path, frame: TrackFrame, queries: list[dict[str, Any]]
) -> list[list[int]]:
    from musicspace_llm.embeddings import OfflineEmbedder
    from musicspace_llm.indexing import embed_catalog
    from musicspace_llm.repository import CatalogRows
    from musicspace_llm.search import top_matches
    from musicspace_llm.understanding import QueryUnderstanding

    async def build():  # noqa: ANN202
        embedder = OfflineEmbedder()
        index, _ = await embed_catalog(
            CatalogRows(frame, _decades(catalog, frame), None), embedder=embedder, batch_size=512
        )
        return embedder, index, await QueryUnderstanding.build(embedder)

    embedder, index, understanding = asyncio.run(build())
    rankings = []
    for item in queries:
        vectors = embedder.encode(understanding.query_texts(item["query"]))
        intent = understanding.parse(item["query"], vectors)
        rankings.append([m.row for m in top_matches(index, intent, vectors[0], limit=K)])
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


def _precision(
    frame: TrackFrame, queries: list[dict[str, Any]], rankings: list[list[int]]
) -> dict[str, float]:
    by_lang: dict[str, list[float]] = defaultdict(list)
    for item, ranking in zip(queries, rankings, strict=True):
        mask = relevant_mask(frame, item["relevant"])
        value = sum(bool(mask[r]) for r in ranking[:K]) / K
        by_lang["all"].append(value)
        by_lang[str(item.get("lang") or "unknown")].append(value)
    out = {"p@10": round(float(np.mean(by_lang.pop("all"))), 4)} if queries else {"p@10": 0.0}
    for lang, values in sorted(by_lang.items()):
        out[f"p@10_{lang}"] = round(float(np.mean(values)), 4)
    return out


def run(*, catalog: Path, queries: Path) -> dict[str, Any]:
    """p@10 overall and per language for the llm search and the keyword TF-IDF baseline."""
    items = read_queries(queries)
    frame = read_catalog_csv(catalog)
    return {
        "llm": _precision(frame, items, _llm_rankings(catalog, frame, items)),
        "keyword_tfidf": _precision(frame, items, _tfidf_rankings(frame, items)),
    }
