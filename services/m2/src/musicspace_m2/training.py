"""Train m2's feature model from the DB and publish M2/tfidf_gbr_models.pkl.

`musicspace train m2` calls train_global_from_db(). A held-out 10% of the measured tracks
gives the metrics in the metadata and the per-support-level intervals; then the model is
refit on every measured track and published atomically.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from musicspace_m2 import repository
from musicspace_m2.predictor import (
    FeaturePredictor,
    PredictorConfig,
    calibrate,
    describe,
    fit_predictor,
    r2_mae,
)
from musicspace_m2.runtime import save_space_for_replicas
from musicspace_m2.settings import Settings
from musicspace_m2.text_features import TrackInputs
from musicspace_shared.db.engine import make_engine, make_sessionmaker
from musicspace_shared.db.tables import ModelRecord
from musicspace_shared.errors import NotEnoughData
from musicspace_shared.model_store import ModelMeta, new_version, now_iso, publish_pickle

MIN_ROWS = 50
HOLDOUT_FRACTION = 0.1
SEED = 7
Progress = Callable[[str], None]


def stderr_progress(prefix: str = "m2 train") -> Progress:
    """Progress lines on stderr (stdout stays for the JSON summary)."""
    started = time.monotonic()

    def say(message: str) -> None:
        print(
            f"[{prefix} {time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True
        )

    return say


def holdout_split(
    n: int, *, seed: int = SEED, fraction: float = HOLDOUT_FRACTION
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    cut = max(1, int(round(n * fraction)))
    return np.sort(order[cut:]), np.sort(order[:cut])


def baseline_metrics(
    train_in: TrackInputs, y_train: np.ndarray, test_in: TrackInputs, y_test: np.ndarray
) -> dict[str, float]:
    """r2_mean of the global and artist means on the same split, for scale."""
    overall = y_train.mean(axis=0)
    global_pred = np.tile(overall, (len(test_in), 1))
    # Per-artist means by grouping (a default computed per test row cost 90k x the mean of the
    # whole training set: half an hour at 1M tracks).
    keys, group = np.unique(np.asarray(train_in.artist_keys, dtype=object), return_inverse=True)
    sums = np.zeros((len(keys), y_train.shape[1]))
    np.add.at(sums, group, y_train)
    means = sums / np.bincount(group, minlength=len(keys))[:, None]
    position = {key: i for i, key in enumerate(keys.tolist())}
    artist_pred = np.array(
        [means[position[k]] if k in position else overall for k in test_in.artist_keys]
    ).reshape(len(test_in), -1)
    return {
        "global_mean_r2_mean": r2_mae(y_test, global_pred)["r2_mean"],
        "artist_mean_r2_mean": r2_mae(y_test, artist_pred)["r2_mean"],
    }


def train_model(
    inputs: TrackInputs,
    features: np.ndarray,
    *,
    config: PredictorConfig | None = None,
    progress: Progress | None = None,
    validate: bool = True,
) -> tuple[FeaturePredictor, dict[str, Any]]:
    """Validate on a held-out 10% (metrics, intervals), then refit on everything."""
    say = progress or (lambda _m: None)
    metrics: dict[str, Any] = {}
    calibration: FeaturePredictor | None = None
    if validate and len(inputs) >= 200:
        fit_idx, test_idx = holdout_split(len(inputs))
        say(f"validation: fitting on {len(fit_idx)} tracks, {len(test_idx)} held out")
        calibration = fit_predictor(
            inputs.take(fit_idx),
            features[fit_idx],
            config=config,
            progress=lambda m: say("validation " + m),
        )
        test_in = inputs.take(test_idx)
        pred = calibration.predict(test_in)
        metrics = {f"holdout_{k}": v for k, v in r2_mae(features[test_idx], pred).items()}
        metrics.update(
            {
                f"holdout_{k}": v
                for k, v in baseline_metrics(
                    inputs.take(fit_idx), features[fit_idx], test_in, features[test_idx]
                ).items()
            }
        )
        calibrate(calibration, test_in, features[test_idx], pred)
        say(
            f"validation: r2_mean {metrics['holdout_r2_mean']:.3f} (artist mean {metrics['holdout_artist_mean_r2_mean']:.3f})"
        )
    say(f"final fit on {len(inputs)} tracks")
    model = fit_predictor(inputs, features, config=config, progress=progress)
    if calibration is not None:
        model.residual_q, model.support_r2 = calibration.residual_q, calibration.support_r2
    return model, metrics


def publish(
    model: FeaturePredictor, *, path: Path, rows: int, metrics: dict[str, Any], seconds: float
) -> ModelMeta:
    meta = ModelMeta(
        version=new_version(),
        trained_at=now_iso(),
        rows=rows,
        metrics=metrics,
        extra={
            "model": describe(model),
            "train_seconds": round(seconds, 1),
            "support_r2": model.support_r2,
        },
    )
    return publish_pickle(path, model, meta, keep_previous=True)


async def train_global_from_db(
    *,
    settings: Settings | None = None,
    progress: Progress | None = None,
    validate: bool = True,
    config: PredictorConfig | None = None,
) -> dict[str, Any]:
    """Train on the DB's measured tracks, publish the model, and (M2_STATE_ON_VOLUME, on by
    default) save the content space for it over the catalog as it is, so the replicas that
    start next read it instead of building it (at 1M tracks a build is most of a start);
    return a JSON-able summary."""
    settings = settings or Settings()
    say = progress or stderr_progress()
    summary = await _train_and_publish(settings, say, validate=validate, config=config)
    if settings.state_on_volume:
        say("building the content space for the new model")
        summary["space"] = await save_space_for_replicas(settings)
        say(f"content space saved: {summary['space']}")
    return summary


async def _train_and_publish(
    settings: Settings, say: Progress, *, validate: bool, config: PredictorConfig | None
) -> dict[str, Any]:
    engine = make_engine(settings)
    try:
        sessions = make_sessionmaker(engine)
        async with sessions() as session:
            say("loading measured tracks from the database")
            table = await repository.load_track_table(session, measured_only=True)
            keep = ~np.isnan(table.features).any(axis=1)
            if keep.sum() < MIN_ROWS:
                raise NotEnoughData(
                    f"m2 needs at least {MIN_ROWS} tracks with measured features; the DB has {int(keep.sum())}"
                )
            measured = np.where(keep)[0]
            if settings.train_max_tracks is not None and len(measured) > settings.train_max_tracks:
                picked = np.random.default_rng(SEED).choice(
                    len(measured), size=settings.train_max_tracks, replace=False
                )
                measured = measured[np.sort(picked)]
                say(f"training on a sample of {len(measured)} of {int(keep.sum())} measured tracks")
            inputs, features = table.inputs.take(measured), table.features[measured]
            started = time.monotonic()
            model, metrics = await asyncio.to_thread(
                train_model, inputs, features, config=config, progress=say, validate=validate
            )
            seconds = time.monotonic() - started
            meta = await asyncio.to_thread(
                publish,
                model,
                path=settings.model_path,
                rows=len(inputs),
                metrics=metrics,
                seconds=seconds,
            )
            session.add(
                ModelRecord(
                    family="M2",
                    kind="global",
                    version=meta.version,
                    path=str(settings.model_path),
                    sha256=meta.sha256,
                    rows=meta.rows,
                    metrics=metrics,
                )
            )
            await session.commit()
    finally:
        await engine.dispose()
    say(f"published {settings.model_path} version {meta.version}")
    return {
        "model": str(settings.model_path),
        "version": meta.version,
        "trained_at": meta.trained_at,
        "rows": meta.rows,
        "measured_tracks": int(keep.sum()),
        "sha256": meta.sha256,
        "seconds": round(seconds, 1),
        "metrics": metrics,
    }
