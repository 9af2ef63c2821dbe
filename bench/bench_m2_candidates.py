"""m2's candidate step at scale: the candidate index (musicspace_m2.candidates) against scoring
every track, in process, on a catalog tiled to `--tracks` rows.

    python bench/bench_m2_candidates.py [--catalog path] [--playlists path] [--tracks 1000000]
        [--users 40] [--depth 1000]

The catalog (default: the demo's) is repeated until it has `--tracks` rows; each copy gets its
own artists (the name suffixed with the copy number: as many artists per track as the source)
and audio features moved by a little noise (no two copies score alike). Users are playlists of
the file, each placed in a random copy. Per user and scorer (the fallback's centroid, the
user's SVM, and `similar` for one of their tracks): milliseconds for the exact path (score every
row, top_k) and the index, the rows the index scored, and how many of the exact best `--depth`
(similar: 20) distinct rows the index returned (recall) and whether the lists are identical.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from musicspace_cli.demo_data import DEMO_CATALOG, DEMO_PLAYLISTS  # noqa: E402
from musicspace_m2.candidates import LinearScore  # noqa: E402
from musicspace_m2.evaluation import inputs_from_frame  # noqa: E402
from musicspace_m2.similar import ContentSpace, best_distinct, build_space  # noqa: E402
from musicspace_m2.text_features import TrackInputs  # noqa: E402
from musicspace_m2.user_svm import fallback_score, svm_score, train_user_svm, user_seed  # noqa: E402
from musicspace_shared.catalog import read_catalog_csv, read_playlists_csv  # noqa: E402

EXACT = 1 << 62  # index_min that no catalog reaches: score every row


class Counted(LinearScore):
    """A LinearScore that counts the rows it scores."""

    scored: int = 0

    def of(self, matrix: Any, popularity: np.ndarray, rows: np.ndarray) -> np.ndarray:
        object.__setattr__(self, "scored", self.scored + len(rows))
        return super().of(matrix, popularity, rows)


def tiled_space(catalog: Path, tracks: int, seed: int) -> tuple[ContentSpace, int]:
    frame = read_catalog_csv(catalog)
    base = inputs_from_frame(frame)
    copies = -(-tracks // len(frame))
    rng = np.random.default_rng(seed)
    pick = np.tile(np.arange(len(frame)), copies)[:tracks]
    copy = np.repeat(np.arange(copies), len(frame))[:tracks]
    inputs = base.take(pick)
    inputs = TrackInputs(
        titles=inputs.titles,
        artists=[f"{a} #{c}" for a, c in zip(inputs.artists, copy.tolist(), strict=True)],
        albums=inputs.albums,
        album_ids=inputs.album_ids,
        genres=inputs.genres,
        subgenres=inputs.subgenres,
        popularity=inputs.popularity,
        years=inputs.years,
    )
    features = frame.features[pick]
    features = features + rng.normal(0, 0.01, features.shape) * np.nanstd(frame.features, axis=0)
    ids = [f"{frame.track_ids[p]}#{c}" for p, c in zip(pick.tolist(), copy.tolist(), strict=True)]
    return build_space(track_ids=ids, inputs=inputs, features=features), len(frame)


def _ms(func: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    out = func()
    return out, (time.perf_counter() - started) * 1000


def _compare(space: ContentSpace, score: LinearScore, exclude: np.ndarray, limit: int) -> dict:
    exact, exact_ms = _ms(
        lambda: best_distinct(space, score, exclude_rows=exclude, limit=limit, index_min=EXACT)
    )
    counted = Counted(score.weights, score.constant, score.popularity_weight)
    fast, fast_ms = _ms(
        lambda: best_distinct(space, counted, exclude_rows=exclude, limit=limit, index_min=0)
    )
    want = {r for r, _ in exact}
    return {
        "exact_ms": exact_ms,
        "index_ms": fast_ms,
        "scored_share": counted.scored / len(space),
        "recall": len(want & {r for r, _ in fast}) / max(1, len(want)),
        "identical": exact == fast,
    }


def _summary(rows: list[dict]) -> dict[str, Any]:
    def pct(key: str, p: float) -> float:
        return round(float(np.percentile([r[key] for r in rows], p)), 3)

    return {
        "queries": len(rows),
        "exact_ms_p50": pct("exact_ms", 50),
        "index_ms_p50": pct("index_ms", 50),
        "index_ms_p99": pct("index_ms", 99),
        "scored_share_p50": pct("scored_share", 50),
        "scored_share_max": pct("scored_share", 100),
        "recall_mean": round(float(np.mean([r["recall"] for r in rows])), 4),
        "recall_min": pct("recall", 0),
        "identical": sum(r["identical"] for r in rows),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    (space, source), build_ms = _ms(lambda: tiled_space(args.catalog, args.tracks, 0))
    _, cells_ms = _ms(lambda: space.cells)
    rng = np.random.default_rng(1)
    playlists = [p for p in read_playlists_csv(args.playlists).values() if len(p) >= 10]
    rng.shuffle(playlists)  # type: ignore[arg-type]
    copies = -(-len(space) // source)
    results: dict[str, list[dict]] = {"fallback": [], "svm": [], "similar": []}
    for number, playlist in enumerate(playlists[: args.users]):
        copy = int(rng.integers(copies))
        ids = [f"{t}#{copy}" for t in playlist]
        rows = np.array(sorted({space.index[t] for t in ids if t in space.index}), dtype=np.int64)
        if len(rows) < 10:
            continue
        results["fallback"].append(_compare(space, fallback_score(space, rows), rows, args.depth))
        model = train_user_svm(
            space=space, positive_rows=rows, disliked_rows=rows[:0], seed=user_seed(number)
        )
        results["svm"].append(_compare(space, svm_score(model), rows, args.depth))
        row = int(rows[0])
        similar = LinearScore(space.matrix[row].toarray().ravel())
        results["similar"].append(_compare(space, similar, np.array([row]), 20))
    return {
        "tracks": len(space),
        "source_tracks": source,
        "depth": args.depth,
        "build_space_s": round(build_ms / 1000, 1),
        "build_index_s": round(cells_ms / 1000, 2),
        "cells": len(space.cells),
        **{name: _summary(rows) for name, rows in results.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=DEMO_CATALOG)
    parser.add_argument("--playlists", type=Path, default=DEMO_PLAYLISTS)
    parser.add_argument("--tracks", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--depth", type=int, default=1000)
    print(json.dumps(run(parser.parse_args())))


if __name__ == "__main__":
    main()
