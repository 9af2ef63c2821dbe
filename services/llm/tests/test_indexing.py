"""`musicspace index rebuild` and `musicspace eval search` on small inputs, for real."""

from __future__ import annotations

import asyncio
import csv
import gzip
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from musicspace_cli.demo_data import DEMO_CATALOG
from musicspace_cli.eval_search import relevant_mask, score
from musicspace_cli.eval_search import run as eval_search
from musicspace_llm.embeddings import OfflineEmbedder, collection_name
from musicspace_llm.index import TrackIndex
from musicspace_llm.indexing import rebuild_from_db
from musicspace_llm.manager import IndexManager, _changed_rows
from musicspace_llm.repository import CatalogRows
from musicspace_llm.scan import CatalogScanner, _contents
from musicspace_llm.search import SearchFilters, filter_mask
from musicspace_llm.store import VectorStore, make_client
from musicspace_shared.catalog import TrackFrame
from musicspace_shared.db.engine import make_engine, make_sessionmaker
from musicspace_shared.db.migrate import upgrade
from tests.factories import create_track

from .helpers import make_settings, synthetic_index


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
def test_eval_search_reports_per_language_and_kind_for_llm_and_baseline(tmp_path: Path) -> None:
    catalog = _small_catalog(tmp_path)
    with catalog.open(encoding="utf-8", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["track_artist"] and r["track_name"])
    queries = tmp_path / "queries.jsonl"
    lines = [
        {"query": "reggaeton party", "lang": "en", "relevant": {"subgenre": ["reggaeton"]}},
        {"query": "라틴 힙합", "lang": "ko", "relevant": {"subgenre": ["latin hip hop"]}},
        {
            "query": "energetic rock",
            "lang": "en",
            "kind": "mood",
            "relevant": {"genre": ["rock"], "features": {"energy": [0.5, 1.0]}},
        },
        {
            "query": f"{row['track_artist']} {row['track_name']}".lower(),
            "lang": "en",
            "kind": "known_item",
            "relevant": {"track_ids": [row["track_id"]]},
        },
    ]
    queries.write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in lines) + "\n")
    result = eval_search(catalog=catalog, queries=queries)
    assert set(result) == {"llm", "keyword_tfidf"}
    for metrics in result.values():
        assert set(metrics) == {
            "p@10",
            "p@10_en",
            "p@10_ko",
            "p@10_mood",
            "mrr@10_known_item",
            "hit@1_known_item",
        }
        assert all(0.0 <= v <= 1.0 for v in metrics.values())
    assert result["llm"]["p@10"] > result["keyword_tfidf"]["p@10"]
    assert result["llm"]["p@10_ko"] > result["keyword_tfidf"]["p@10_ko"]
    assert result["llm"]["hit@1_known_item"] == 1.0


def test_eval_search_rejects_a_malformed_query_file(tmp_path: Path) -> None:
    queries = tmp_path / "bad.jsonl"
    queries.write_text('{"lang": "en"}\n')
    with pytest.raises(ValueError, match="query"):
        eval_search(catalog=_small_catalog(tmp_path, per_subgenre=1), queries=queries)


def _frame() -> TrackFrame:
    features = np.full((4, 9), np.nan)
    features[:, 7] = [170, 120, 90, np.nan]  # tempo
    return TrackFrame(
        track_ids=["a", "b", "c", "d"],
        titles=["One", "Two", "Three", "Four"],
        artists=["Drake", "Queen", "Drake", "Queen"],
        albums=["", "", "", ""],
        genres=["rap", "rock", "rap", "rock"],
        subgenres=["trap", "classic rock", "hip hop", "album rock"],
        popularity=np.zeros(4),
        features=features,
        release_dates=["2015-01-01", "1975", None, "1980-05-05"],
    )


def test_eval_rules_cover_ids_artists_years_and_missing_values() -> None:
    frame = _frame()
    assert relevant_mask(frame, {"track_ids": ["b", "x"]}).tolist() == [False, True, False, False]
    assert relevant_mask(frame, {"artist": ["Drake"]}).tolist() == [True, False, True, False]
    # no release year, no tempo: fails the rule
    assert relevant_mask(frame, {"year": [1970, 2020]}).tolist() == [True, True, False, True]
    assert relevant_mask(frame, {"features": {"tempo": [100, 1000]}}).tolist() == [
        True,
        True,
        False,
        False,
    ]
    assert relevant_mask(frame, {"artist": ["Queen"], "year": [1970, 1979]}).tolist() == [
        False,
        True,
        False,
        False,
    ]


def test_eval_scores_known_items_by_rank_and_the_other_kinds_by_precision() -> None:
    queries = [
        {"query": "two", "lang": "en", "kind": "known_item", "relevant": {"track_ids": ["b"]}},
        {"query": "four", "lang": "en", "kind": "known_item", "relevant": {"track_ids": ["d"]}},
        {"query": "drake", "lang": "ko", "kind": "artist", "relevant": {"artist": ["Drake"]}},
        {"query": "rock", "lang": "en", "relevant": {"genre": ["rock"]}},  # v1 line: no kind
    ]
    rankings = [[1, 0], [0, 2, 3], [0, 2, 1], [1, 3]]
    metrics = score(_frame(), queries, rankings)
    assert metrics == {
        "p@10": round((0.2 + 0.2) / 2, 4),
        "p@10_artist": 0.2,
        "p@10_en": 0.2,
        "p@10_ko": 0.2,
        "mrr@10_known_item": round((1 + 1 / 3) / 2, 4),
        "hit@1_known_item": 0.5,
    }


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


@pytest.mark.parametrize(
    ("change", "differs"),
    [
        ({}, [False, False]),  # the same rows read again (NaN features and popularity too)
        ({"titles": ["Song A", "Song B!"]}, [False, True]),
        ({"subgenres": ["electropop", "hard rock"]}, [True, False]),
        ({"popularity": np.array([51.0, np.nan])}, [True, False]),
        ({"features": np.array([[0.5] * 8 + [0.6], [np.nan] * 9])}, [True, False]),
    ],
)
def test_the_scan_worker_tells_changed_content_by_its_hash(
    change: dict[str, object], differs: list[bool]
) -> None:
    scanner = CatalogScanner()
    scanner.remember(_rows())
    again = _contents(_rows(**change))
    assert [scanner.contents[t] != c for t, c in zip(["a", "b"], again, strict=True)] == differs


def _index(rows: CatalogRows, vectors: np.ndarray | None = None) -> TrackIndex:
    n = len(rows.frame)
    return TrackIndex(
        frame=rows.frame,
        decades=rows.decades,
        vectors=np.eye(n, 4, dtype=np.float32) if vectors is None else vectors,
    )


def test_upserted_replaces_tracks_in_their_rows_and_keeps_the_name_indexes() -> None:
    index = _index(_rows())
    index.warm()
    louder = _rows(popularity=np.array([50.0, 80.0]))
    fresh = _index(
        CatalogRows(louder.frame.subset(np.array([1])), louder.decades[[1]], None),
        vectors=np.full((1, 4), 0.5, dtype=np.float32),
    )
    new = index.upserted(fresh)
    assert new.frame.track_ids == ["a", "b"] and list(new.popularity) == [0.5, 0.8]
    assert new.vectors[1].tolist() == [0.5] * 4 and new.vectors[0].tolist() == [1, 0, 0, 0]
    # Only popularity moved: the name indexes are the old snapshot's, not rebuilt.
    assert new.lexical is index.lexical and new.artist_names is index.artist_names


def test_upserted_appends_new_tracks_and_rebuilds_names_that_changed() -> None:
    index = _index(_rows())
    index.warm()
    renamed = _rows(track_ids=["b", "c"], titles=["Song B (live)", "Song C"])
    renamed.frame.__post_init__()
    new = index.upserted(_index(renamed))
    assert new.frame.track_ids == ["a", "b", "c"]
    assert new.frame.titles == ["Song A", "Song B (live)", "Song C"]
    assert new.lexical is not index.lexical
    retitled = index.upserted(_index(_rows(titles=["Song A", "Song B (live)"])))
    assert retitled.lexical is not index.lexical


def test_upserted_vectors_and_decades_follow_their_tracks_replaced_and_appended() -> None:
    rng = np.random.default_rng(3)
    index = synthetic_index(rng.standard_normal((40, 4)).astype(np.float32), np.zeros(40))
    index.decades[:] = rng.integers(1960, 2020, 40) // 10 * 10
    # Five of its tracks (out of order) and three new ones.
    other = synthetic_index(rng.standard_normal((8, 4)).astype(np.float32), np.zeros(8))
    ids = ["t0000031", "t0000002", "new1", "t0000017", "new2", "t0000039", "t0000000", "new3"]
    other.frame.track_ids[:] = ids
    other.frame.__post_init__()
    other.decades[:] = np.arange(8) * 10 + 1900
    new = index.upserted(other)
    assert len(new) == 43 and new.frame.track_ids[40:] == ["new1", "new2", "new3"]
    for row, track_id in enumerate(new.frame.track_ids):
        source, at = (other, ids.index(track_id)) if track_id in ids else (index, row)
        assert new.vectors[row].tolist() == source.vectors[at].tolist(), track_id
        assert new.decades[row] == source.decades[at], track_id


def test_artist_rows_are_each_artists_tracks_ascending() -> None:
    index = synthetic_index(np.eye(700, 4, dtype=np.float32), np.zeros(700))
    assert index.artist_rows("artist 7").tolist() == [7, 307, 607]
    assert index.artist_rows("artist 299").tolist() == [299, 599]
    assert index.artist_rows("nobody").tolist() == []


def test_warm_builds_what_searches_read_so_no_search_waits_for_it() -> None:
    index = synthetic_index(np.eye(20, 4, dtype=np.float32), np.zeros(20))
    index.warm()
    for built in ("_lexical", "_artist_names", "_artist_rows", "years", "era_slots", "leans"):
        assert built in index.__dict__, built
    assert index.columns.release_years is not None
    assert set(index.columns._codes) == {"genres", "subgenres"}


def test_ready_only_once_the_first_snapshot_has_warmed(monkeypatch: pytest.MonkeyPatch) -> None:
    """At 1M the name indexes take tens of seconds: a replica that said ready before them had
    its first searches wait for them (p99 2.9 s). Later snapshots warm while one serves."""
    release = threading.Event()
    warm = TrackIndex.warm

    def held_warm(self: TrackIndex) -> None:
        release.wait(10)
        warm(self)

    monkeypatch.setattr(TrackIndex, "warm", held_warm)
    manager = IndexManager(embedder=OfflineEmbedder(), store=None, sessionmaker=None)  # type: ignore[arg-type]
    try:
        manager.understanding = object()  # type: ignore[assignment]
        manager.state = "ready"
        manager.index = synthetic_index(np.eye(20, 4, dtype=np.float32), np.zeros(20))
        assert manager.readiness() == "index: warming"
        release.set()
        assert manager.index.warmed.wait(10)
        assert manager.readiness() is None
        release.clear()
        manager.index = synthetic_index(np.eye(30, 4, dtype=np.float32), np.zeros(30))
        assert not manager.index.warmed.is_set()
        assert manager.readiness() is None
    finally:
        release.set()
        manager.cpu.close()


def test_genre_filters_read_the_name_codes_case_aside() -> None:
    index = synthetic_index(np.eye(6, 4, dtype=np.float32), np.zeros(6))
    assert filter_mask(index, SearchFilters(genres=["POP"])).all()
    assert not filter_mask(index, SearchFilters(genres=["rock"])).any()
    assert filter_mask(index, SearchFilters(subgenres=["Dance Pop"])).all()
