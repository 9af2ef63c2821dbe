"""bench_scale_llm's pure parts: recall of the ANN top 10 against the exact one, and the
typed queries drawn from a given catalog."""

from __future__ import annotations

import pytest

from bench.bench_llm import typed_queries
from bench.bench_scale_llm import recall_at


def test_recall_counts_shared_tracks_whatever_their_order() -> None:
    exact = [["a", "b", "c", "d"], ["a", "b"], ["x", "y"]]
    found = [["a", "b", "c", "d"], ["b", "a"], ["x", "z"]]
    out = recall_at(found, exact)
    assert out["queries"] == 3
    assert out["mean_recall"] == pytest.approx((1 + 1 + 0.5) / 3, abs=1e-4)
    assert out["min_recall"] == 0.5
    # Only the first is the same top k in the same order.
    assert out["identical_share"] == pytest.approx(1 / 3, abs=1e-4)


def test_recall_looks_at_the_top_k_only_and_empty_answers_agree() -> None:
    exact = [[str(i) for i in range(12)], []]
    found = [[str(i) for i in range(10)] + ["other", "more"], []]
    out = recall_at(found, exact, k=10)
    assert out["mean_recall"] == 1.0 and out["identical_share"] == 1.0
    assert recall_at([["a"]], [[]])["mean_recall"] == 0.0  # tracks where none are due


def test_recall_refuses_unpaired_lists_and_reports_nothing_for_none() -> None:
    with pytest.raises(ValueError):
        recall_at([["a"]], [])
    assert recall_at([], [])["mean_recall"] is None


def test_typed_queries_draw_from_the_given_catalog() -> None:
    titles = [f"Zyxq Title {i}" for i in range(50)]
    artists = [f"Qwv Artist {i % 7}" for i in range(50)]
    queries = typed_queries(200, catalog=(titles, artists))
    assert len(queries) == len(set(queries)) == 200
    named = [q for q in queries if "zyxq" in q.lower() or "qwv" in q.lower()]
    assert len(named) > 100  # the rest: numbers and Korean artist names, catalog-free
    assert not any("Drake" in q or "Coldplay" in q for q in queries)
