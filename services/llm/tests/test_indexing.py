"""`musicspace index rebuild` and `musicspace eval search` on small inputs, for real."""

from __future__ import annotations

import asyncio
import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from musicspace_cli.demo_data import DEMO_CATALOG
from musicspace_cli.eval_search import run as eval_search
from musicspace_llm.embeddings import OfflineEmbedder, collection_name
from musicspace_llm.index import TrackIndex
from musicspace_llm.indexing import rebuild_from_db
from musicspace_llm.manager import _changed_rows
from musicspace_llm.repository import CatalogRows
from musicspace_llm.store import VectorStore, make_client
from musicspace_shared.catalog import TrackFrame
from musicspace_shared.db.engine import make_engine, make_sessionmaker
from musicspace_shared.db.migrate import upgrade
from tests.factories import create_track

from .helpers import make_settings


async def test_rebuild_from_db_reads_settings_from_env_and_fills_the_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'rebuild.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url=url)
    async with make_sessionmaker(engine)() as session:
        for i in range(7):
            await create_track(session, title=f"Song {i}")
    await engine.dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("MODEL_ROOT", str(tmp_path / "models"))
    monkeypatch.setenv("LLM_PROVIDER", "offline")
    first = await rebuild_from_db()
    second = await rebuild_from_db()  # a rebuild starts from an empty collection again
    assert first["tracks"] == first["embedded"] == first["stored"] == 7
    assert second["stored"] == 7
    settings = make_settings(url, tmp_path / "models")
    store = VectorStore(make_client(settings), first["collection"])
    assert store.count() == 7
    assert first["collection"] == collection_name(OfflineEmbedder.__new__(OfflineEmbedder))
    assert (tmp_path / "models" / "LLM" / "chroma").is_dir()


def _small_catalog(path: Path, per_subgenre: int = 12) -> Path:
    with gzip.open(DEMO_CATALOG, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        header, rows = reader.fieldnames, list(reader)
    kept, counts = [], {}
    for row in rows:
        if counts.get(row["subgenre"], 0) < per_subgenre:
            counts[row["subgenre"]] = counts.get(row["subgenre"], 0) + 1
            kept.append(row)
    out = path / "catalog.csv"
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(kept)
    return out


@pytest.mark.slow
def test_eval_search_reports_precision_per_language_for_llm_and_baseline(tmp_path: Path) -> None:
    queries = tmp_path / "queries.jsonl"
    queries.write_text(
        "\n".join(
            json.dumps(q, ensure_ascii=False)
            for q in [
                {"query": "reggaeton party", "lang": "en", "relevant": {"subgenre": ["reggaeton"]}},
                {"query": "라틴 힙합", "lang": "ko", "relevant": {"subgenre": ["latin hip hop"]}},
                {
                    "query": "energetic rock",
                    "lang": "en",
                    "relevant": {"genre": ["rock"], "features": {"energy": [0.5, 1.0]}},
                },
            ]
        )
        + "\n"
    )
    result = eval_search(catalog=_small_catalog(tmp_path), queries=queries)
    assert set(result) == {"llm", "keyword_tfidf"}
    for metrics in result.values():
        assert set(metrics) == {"p@10", "p@10_en", "p@10_ko"}
        assert all(0.0 <= v <= 1.0 for v in metrics.values())
    assert result["llm"]["p@10"] > result["keyword_tfidf"]["p@10"]
    assert result["llm"]["p@10_ko"] > result["keyword_tfidf"]["p@10_ko"]


def test_eval_search_rejects_a_malformed_query_file(tmp_path: Path) -> None:
    queries = tmp_path / "bad.jsonl"
    queries.write_text('{"lang": "en"}\n')
    with pytest.raises(ValueError, match="query"):
        eval_search(catalog=_small_catalog(tmp_path, per_subgenre=1), queries=queries)


def _rows(**changes: object) -> CatalogRows:
    features = np.array([[0.5] * 9, [np.nan] * 9])
    frame = TrackFrame(
        track_ids=["a", "b"],
        titles=["Song A", "Song B"],
        artists=["X", "Y"],
        albums=["", ""],
        genres=["pop", "rock"],
        subgenres=["dance pop", "hard rock"],
        popularity=np.array([50.0, np.nan]),
        features=features,
    )
    for name, value in changes.items():
        setattr(frame, name, value)
    return CatalogRows(frame, np.array([1990, 0]), None)


def test_changed_rows_are_the_new_ones_and_those_whose_document_fields_moved() -> None:
    base = _rows()
    index = TrackIndex(
        frame=base.frame,
        decades=base.decades,
        vectors=np.zeros((2, 4), dtype=np.float32),
        documents=["", ""],
    )
    assert list(_changed_rows(index, _rows())) == []  # NaN features and popularity: the same
    assert list(_changed_rows(index, _rows(titles=["Song A", "Song B (live)"]))) == [1]
    assert list(_changed_rows(index, _rows(popularity=np.array([51.0, np.nan])))) == [0]
    moved = _rows()
    moved.decades = np.array([2000, 0])
    assert list(_changed_rows(index, moved)) == [0]
    fresh = _rows(track_ids=["a", "c"])
    fresh.frame.__post_init__()
    assert list(_changed_rows(index, fresh)) == [1]
