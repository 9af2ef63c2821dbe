"""`musicspace eval features --truth FILE`: m2's predicted audio features against baselines.

m2 trains on the catalog's tracks that have features (minus any track in FILE), then predicts
every track in FILE (`track_id,track_name,track_artist,genre,<9 features>`). A FILE track that
is also in the catalog is predicted from the catalog's metadata (album, subgenre, popularity,
release date), as the service would from the DB; otherwise from FILE's own columns.
Baselines on the same split: global_mean, genre_mean, artist_mean. Deterministic (fixed seeds).

`write_dev_truth` makes a held-out truth file from a catalog for development: a random 10%
of the tracks with features, or whole duplicate groups (same title and artist) so that no
copy of a held-out recording stays in training.
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Any

import numpy as np

from musicspace_m2.predictor import PredictorConfig, r2_mae
from musicspace_m2.text_features import (
    CatalogFile,
    TrackInputs,
    inputs_from_rows,
    norm,
    read_catalog_file,
)
from musicspace_m2.training import train_model
from musicspace_shared.features import FEATURES

TRUTH_COLUMNS = ("track_id", "track_name", "track_artist", "genre", *FEATURES)


def _open(path: Path, mode: str):  # type: ignore[no-untyped-def]
    opener = gzip.open if str(path).endswith(".gz") else open
    return opener(path, mode, encoding="utf-8", newline="")  # type: ignore[operator]


def read_truth(path: Path) -> tuple[list[dict[str, str]], np.ndarray]:
    """Rows with all 9 features (others cannot be scored) and their (n, 9) values."""
    with _open(path, "rt") as handle:
        reader = csv.DictReader(handle)
        missing = [
            c
            for c in ("track_name", "track_artist", *FEATURES)
            if c not in (reader.fieldnames or [])
        ]
        if missing:
            raise ValueError(f"{path}: missing columns {', '.join(missing)}")
        rows, values = [], []
        for row in reader:
            try:
                vector = [float(row[name]) for name in FEATURES]
            except (TypeError, ValueError):
                continue
            rows.append(row)
            values.append(vector)
    return rows, np.array(values, dtype=np.float64).reshape(len(rows), len(FEATURES))


def truth_inputs(rows: list[dict[str, str]], catalog: CatalogFile) -> TrackInputs:
    positions = {t: i for i, t in enumerate(catalog.track_ids)}
    merged: list[dict[str, object]] = []
    for row in rows:
        i = positions.get(row.get("track_id", ""))
        if i is None:
            merged.append(
                {
                    "title": row.get("track_name"),
                    "artist": row.get("track_artist"),
                    "genre": row.get("genre"),
                }
            )
            continue
        c = catalog.inputs
        merged.append(
            {
                "title": c.titles[i] or row.get("track_name"),
                "artist": c.artists[i] or row.get("track_artist"),
                "album": c.albums[i],
                "album_id": c.album_ids[i],
                "genre": c.genres[i] or row.get("genre"),
                "subgenre": c.subgenres[i],
                "popularity": c.popularity[i],
                "release_date": "" if np.isnan(c.years[i]) else str(int(c.years[i])),
            }
        )
    return inputs_from_rows(merged)


def _group_mean(keys_train: list[str], y: np.ndarray, keys_test: list[str]) -> np.ndarray:
    sums: dict[str, list[np.ndarray]] = {}
    for key, row in zip(keys_train, y, strict=True):
        sums.setdefault(key, []).append(row)
    means = {k: np.mean(v, axis=0) for k, v in sums.items()}
    fallback = y.mean(axis=0)
    return np.array([means.get(k, fallback) for k in keys_test]).reshape(len(keys_test), y.shape[1])


def run(*, catalog: Path, truth: Path, config: PredictorConfig | None = None) -> dict[str, Any]:
    """Train m2 on the catalog (minus FILE's tracks) and score it and the baselines on FILE."""
    cat = read_catalog_file(catalog)
    rows, y_true = read_truth(truth)
    if not rows:
        raise ValueError(f"{truth}: no rows with all 9 features")
    held = {row.get("track_id", "") for row in rows}
    train_pos = np.array([i for i, t in enumerate(cat.track_ids) if t not in held], dtype=np.int64)
    train_pos = train_pos[cat.has_features[train_pos]]
    train_in, y_train = cat.inputs.take(train_pos), cat.features[train_pos]
    test_in = truth_inputs(rows, cat)

    model, _ = train_model(train_in, y_train, config=config, validate=False)
    genres_test = [norm(row.get("genre")) for row in rows]
    return {
        "m2": r2_mae(y_true, model.predict(test_in)),
        "global_mean": r2_mae(y_true, np.tile(y_train.mean(axis=0), (len(rows), 1))),
        "genre_mean": r2_mae(y_true, _group_mean(train_in.genres, y_train, genres_test)),
        "artist_mean": r2_mae(
            y_true, _group_mean(train_in.artist_keys, y_train, test_in.artist_keys)
        ),
    }


def write_dev_truth(
    *,
    catalog: Path,
    out: Path,
    seed: int = 0,
    fraction: float = 0.1,
    group_duplicates: bool = False,
) -> Path:
    """Write a held-out truth file: a random `fraction` of the catalog's tracks with features."""
    cat = read_catalog_file(catalog)
    with_features = np.where(cat.has_features)[0]
    rng = np.random.default_rng(seed)
    if group_duplicates:
        keys = [cat.inputs.duplicate_keys[i] for i in with_features]
        groups = sorted(set(keys))
        chosen = set(rng.choice(len(groups), int(len(groups) * fraction), replace=False).tolist())
        picked_keys = {groups[g] for g in chosen}
        # Every copy of a held-out recording leaves training (with or without features).
        picked = [i for i, key in enumerate(cat.inputs.duplicate_keys) if key in picked_keys]
    else:
        picked = sorted(
            rng.choice(with_features, int(len(with_features) * fraction), replace=False).tolist()
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    with _open(out, "wt") as handle:
        writer = csv.writer(handle)
        writer.writerow(TRUTH_COLUMNS)
        for i in picked:
            values = cat.features[i]
            writer.writerow(
                [
                    cat.track_ids[i],
                    cat.inputs.titles[i],
                    cat.inputs.artists[i],
                    cat.inputs.genres[i],
                    *("" if np.isnan(v) else repr(float(v)) for v in values),
                ]
            )
    return out
