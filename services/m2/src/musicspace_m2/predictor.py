"""Text and metadata -> the 9 audio features: TF-IDF ridge stack + target encodings + gradient boosting.

Stage 1 turns the sparse text (title words and character n-grams, artist, album, genre,
subgenre) into 9 ridge predictions; stage 2 is one HistGradientBoostingRegressor per feature
over dense columns: the ridge predictions, smoothed means of the track's artist, album and
exact duplicates (same title and artist), subgenre, popularity and release year. Stage-2
training rows see stage-1 outputs and encodings computed out of fold, as unseen tracks would.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold
from threadpoolctl import ThreadpoolController

from musicspace_m2.text_features import TrackInputs
from musicspace_shared.features import FEATURES, clip_to_ranges

logger = logging.getLogger("musicspace.m2.predictor")
N_FEATURES = len(FEATURES)
Progress = Callable[[str], None]
# Vectorizers whose document is one whole value (an artist; a genre|subgenre pair): the ridge's
# share of such a document is the same every time, so it is computed once per distinct value.
_WHOLE_VALUES = ("artist", "tags")
_VALUE_CACHE_MAX = 200_000

# One OpenMP thread for the boosters: on a small shared machine, OpenMP's spinning threads
# made a fit 13x slower under load (measured: 9 s single-threaded vs 122 s with 2 threads).
# Service replicas scale by processes, not threads.
_THREADS = ThreadpoolController()


def _one_thread():  # type: ignore[no-untyped-def]
    return _THREADS.limit(limits=1, user_api="openmp")


@dataclass
class PredictorConfig:
    ridge_alpha: float = 3.0
    # Title char n-grams measured no better than words (r2_mean 0.327 vs 0.328) and cost the
    # most at prediction time: off by default.
    char_ngrams: bool = False
    # Title bigrams and album words measured no better (0.326 both ways) once the album and
    # artist means are in stage 2: the lighter text model is the default.
    title_ngram_max: int = 1
    album_words: bool = False
    folds: int = 3
    smoothing: dict[str, float] = field(
        default_factory=lambda: {"artist": 3.0, "album": 2.0, "dup": 0.5, "subgenre": 10.0}
    )
    # 60 trees of 15 leaves measured as good as 300 of 31 (r2_mean 0.327 vs 0.328 on a random
    # 10% of the catalog) at a fraction of the prediction cost.
    hgb_max_iter: int = 60
    # Per feature, as many trees as a held-out 20% of the training rows still rewards (within
    # iteration_tolerance of R²), up to hgb_max_iter; the final trees fit all rows. Measured
    # over 6 random 10% splits: r2_mean 0.3250 with or without, 330-385 trees instead of 540
    # (tempo and liveness peak at 15-40 trees; more only overfit them).
    select_iterations: bool = True
    iteration_tolerance: float = 0.001
    min_iterations: int = 10
    hgb_learning_rate: float = 0.15
    hgb_max_leaf_nodes: int = 15
    hgb_min_samples_leaf: int = 40
    hgb_l2: float = 1.0
    seed: int = 7


def whole_value(text: str) -> list[str]:
    """The whole string as one token (an artist is one thing, not its words)."""
    return [text] if text else []


def pipe_tokens(text: str) -> list[str]:
    return text.split("|") if text else []


def _text_vectorizers(config: PredictorConfig) -> dict[str, TfidfVectorizer]:
    # Title words (remix/live/feat/acoustic...), the artist as one token, genre/subgenre tags;
    # char n-grams and album words are options (see PredictorConfig for what they measured).
    vectorizers = {
        "title_words": TfidfVectorizer(
            ngram_range=(1, config.title_ngram_max), min_df=2, sublinear_tf=True, dtype=np.float32
        ),
        "title_chars": TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=(2, 4),
            min_df=3,
            sublinear_tf=True,
            max_features=60000,
            dtype=np.float32,
        ),
        "artist": TfidfVectorizer(analyzer=whole_value, min_df=1, dtype=np.float32),
        "album_words": TfidfVectorizer(
            ngram_range=(1, 1), min_df=2, sublinear_tf=True, dtype=np.float32
        ),
        "tags": TfidfVectorizer(analyzer=pipe_tokens, dtype=np.float32),
    }
    if not config.char_ngrams:
        del vectorizers["title_chars"]
    if not config.album_words:
        del vectorizers["album_words"]
    return vectorizers


def _text_columns(inputs: TrackInputs, wanted: dict[str, TfidfVectorizer]) -> dict[str, list[str]]:
    titles = inputs.norm_titles
    columns = {
        "title_words": titles,
        "title_chars": titles,
        "artist": inputs.artist_keys,
        "album_words": inputs.norm_albums,
        "tags": [f"g={g}|s={s}" for g, s in zip(inputs.genres, inputs.subgenres, strict=True)],
    }
    return {name: columns[name] for name in wanted}


class TargetEncoder:
    """Smoothed per-key means of the (standardized) targets, plus the key's log count.

    Stored as one table (a row per key, a last row for unseen keys) so encoding a batch is a
    dict lookup per track and one fancy index.
    """

    def __init__(self, smoothing: float) -> None:
        self.smoothing = smoothing
        self.rows: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        self.table = np.zeros((1, 1))

    def fit(self, keys: list[str], targets: np.ndarray) -> TargetEncoder:
        self.rows = {}
        ids = np.array(
            [self.rows.setdefault(k, len(self.rows)) if k else -1 for k in keys], dtype=np.int64
        )
        m, width = len(self.rows), targets.shape[1]
        seen = ids >= 0
        sums = np.zeros((m, width))
        np.add.at(sums, ids[seen], targets[seen])
        counts = np.bincount(ids[seen], minlength=m).astype(np.float64)
        self.table = np.full((m + 1, width + 1), np.nan)
        # Shrink toward 0 (the standardized global mean) by the key's support.
        self.table[:m, :width] = sums / (counts[:, None] + self.smoothing)
        self.table[:m, width] = np.log1p(counts)
        self.table[m, width] = 0.0
        self.counts = {k: int(counts[i]) for k, i in self.rows.items()}
        return self

    def transform(self, keys: list[str]) -> np.ndarray:
        """(n, width + 1): smoothed mean (NaN when the key is unseen) and log1p(count)."""
        unseen = len(self.rows)
        get = self.rows.get
        return self.table[
            np.fromiter((get(k, unseen) for k in keys), dtype=np.int64, count=len(keys))
        ]


@dataclass
class FeaturePredictor:
    """The fitted model; pickled whole into M2/tfidf_gbr_models.pkl."""

    config: PredictorConfig
    mean: np.ndarray
    scale: np.ndarray
    vectorizers: dict[str, TfidfVectorizer]
    ridge: Ridge
    encoders: dict[str, TargetEncoder]
    genre_codes: dict[str, int]
    subgenre_codes: dict[str, int]
    boosters: list[HistGradientBoostingRegressor]
    residual_q: dict[str, np.ndarray] = field(
        default_factory=dict
    )  # support level -> (9,) 80% half-width
    support_r2: dict[str, float] = field(default_factory=dict)

    def sparse(self, inputs: TrackInputs) -> sp.csr_matrix:
        columns = _text_columns(inputs, self.vectorizers)
        return sp.hstack(
            [vec.transform(columns[name]) for name, vec in self.vectorizers.items()], format="csr"
        )

    def dense(
        self, inputs: TrackInputs, ridge_out: np.ndarray, encodings: dict[str, np.ndarray]
    ) -> np.ndarray:
        genre = np.array([self.genre_codes.get(g, -1) for g in inputs.genres], dtype=np.float64)
        subgenre = np.array(
            [self.subgenre_codes.get(s, -1) for s in inputs.subgenres], dtype=np.float64
        )
        genre[genre < 0] = np.nan
        subgenre[subgenre < 0] = np.nan
        return np.column_stack(
            [
                ridge_out,
                encodings["artist"],
                encodings["album"],
                encodings["dup"],
                encodings["subgenre"],
                genre,
                subgenre,
                inputs.popularity,
                inputs.years,
            ]
        )

    def encode(self, inputs: TrackInputs) -> dict[str, np.ndarray]:
        return {
            "artist": self.encoders["artist"].transform(inputs.artist_keys),
            "album": self.encoders["album"].transform(inputs.album_keys),
            "dup": self.encoders["dup"].transform(inputs.duplicate_keys),
            "subgenre": self.encoders["subgenre"].transform(inputs.subgenres),
        }

    def stage1(self, inputs: TrackInputs) -> np.ndarray:
        """The ridge's (n, 9) output, as ridge.predict(sparse(inputs)) gives it, one block of
        columns at a time: whole-value blocks come from a per-value cache (measured: 2.3 of
        the 6.8 ms that TF-IDF took per 1,000 tracks went to the artist and genre blocks)."""
        columns = _text_columns(inputs, self.vectorizers)
        coef = self.ridge.coef_
        out = np.tile(np.asarray(self.ridge.intercept_, dtype=np.float64), (len(inputs), 1))
        start = 0
        for name, vectorizer in self.vectorizers.items():
            block = coef[:, start : start + len(vectorizer.vocabulary_)].T
            start += block.shape[0]
            if name in _WHOLE_VALUES:
                out += self._per_value(name, vectorizer, block, columns[name])
            else:
                out += vectorizer.transform(columns[name]) @ block
        return out

    def _per_value(
        self, name: str, vectorizer: TfidfVectorizer, block: np.ndarray, docs: list[str]
    ) -> np.ndarray:
        caches: dict[str, dict[str, np.ndarray]] = self.__dict__.setdefault("_value_caches", {})
        cache = caches.get(name)
        if cache is None or len(cache) > _VALUE_CACHE_MAX:
            # A fresh dict rather than clear(): another thread may be reading the old one.
            cache = caches[name] = {}
        missing = [doc for doc in dict.fromkeys(docs) if doc not in cache]
        if missing:
            cache.update(zip(missing, vectorizer.transform(missing) @ block, strict=True))
        return np.array([cache[doc] for doc in docs]).reshape(len(docs), N_FEATURES)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for runtime_only in ("_value_caches", "_ensembles"):  # rebuilt on demand
            state.pop(runtime_only, None)
        return state

    def predict_scaled(self, inputs: TrackInputs) -> np.ndarray:
        x = self.dense(inputs, self.stage1(inputs), self.encode(inputs))
        ensembles = self.__dict__.get("_ensembles")
        if ensembles is None:
            ensembles = self.__dict__["_ensembles"] = [tree_sum(b) for b in self.boosters]
        with _one_thread():
            return np.column_stack([ensemble.predict(x) for ensemble in ensembles])

    def predict(self, inputs: TrackInputs) -> np.ndarray:
        """(n, 9) features in their natural units, clipped to plausible ranges."""
        if len(inputs) == 0:
            return np.empty((0, N_FEATURES))
        return clip_to_ranges(self.predict_scaled(inputs) * self.scale + self.mean)

    def support(self, inputs: TrackInputs) -> list[str]:
        """How much the model knows about each track: dup, album, artist or text only."""
        dup, album, artist = (self.encoders[k] for k in ("dup", "album", "artist"))
        levels = []
        for d, al, ar in zip(
            inputs.duplicate_keys, inputs.album_keys, inputs.artist_keys, strict=True
        ):
            if d in dup.counts:
                levels.append("duplicate")
            elif al in album.counts:
                levels.append("album")
            elif ar in artist.counts:
                levels.append("artist")
            else:
                levels.append("text")
        return levels

    def uncertainty(self, inputs: TrackInputs) -> tuple[list[float], list[np.ndarray]]:
        """Per-track confidence (held-out R² of its support level) and 80% half-widths."""
        levels = self.support(inputs)
        default = np.full(N_FEATURES, np.nan)
        by_level = {level: min(max(float(r2), 0.0), 1.0) for level, r2 in self.support_r2.items()}
        confidence = [by_level.get(level, 0.0) for level in levels]
        return confidence, [self.residual_q.get(level, default) for level in levels]


class TreeSum:
    """A fitted HistGradientBoostingRegressor's prediction without its per-call overhead.

    booster.predict(x) validates x and rebuilds the category bitsets on every call, then
    walks its trees: measured 27 ms for the 9 boosters on 1,000 rows, of which ~5 ms was
    that overhead (about as much on 100 rows). Here the trees are walked directly over the
    dense float64 matrix predict_scaled builds; tests check it equals booster.predict.
    """

    def __init__(self, booster: HistGradientBoostingRegressor) -> None:
        self.baseline = float(np.asarray(booster._baseline_prediction).ravel()[0])
        self.trees = [tree for (tree,) in booster._predictors]  # one tree per iteration
        self.known_cat_bitsets, self.f_idx_map = booster._bin_mapper.make_known_categories_bitsets()
        self.n_features = booster.n_features_in_

    def predict(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected {self.n_features} columns, got {x.shape}")
        x = np.ascontiguousarray(x, dtype=np.float64)
        out = np.full(len(x), self.baseline)
        for tree in self.trees:
            out += tree.predict(x, self.known_cat_bitsets, self.f_idx_map, 1)
        return out


def tree_sum(booster: HistGradientBoostingRegressor) -> TreeSum | HistGradientBoostingRegressor:
    """TreeSum over the booster, or the booster itself where this scikit-learn keeps its trees
    elsewhere (TreeSum reads private attributes; the locks pin the version it was checked on)."""
    try:
        return TreeSum(booster)
    except AttributeError:
        logger.warning("scikit-learn internals differ: boosters predict through their API")
        return booster


def _fit_stage1(
    config: PredictorConfig, inputs: TrackInputs, y: np.ndarray
) -> tuple[dict[str, TfidfVectorizer], Ridge]:
    vectorizers = _text_vectorizers(config)
    columns = _text_columns(inputs, vectorizers)
    x = sp.hstack(
        [vec.fit_transform(columns[name]) for name, vec in vectorizers.items()], format="csr"
    )
    ridge = Ridge(alpha=config.ridge_alpha, solver="sparse_cg", random_state=config.seed).fit(x, y)
    return vectorizers, ridge


def _encoders(
    config: PredictorConfig, inputs: TrackInputs, y: np.ndarray
) -> dict[str, TargetEncoder]:
    s = config.smoothing
    return {
        "artist": TargetEncoder(s["artist"]).fit(inputs.artist_keys, y),
        "album": TargetEncoder(s["album"]).fit(inputs.album_keys, y),
        "dup": TargetEncoder(s["dup"]).fit(inputs.duplicate_keys, y),
        "subgenre": TargetEncoder(s["subgenre"]).fit(inputs.subgenres, y),
    }


def _codes(values: list[str]) -> dict[str, int]:
    return {value: i for i, value in enumerate(sorted({v for v in values if v}))}


def fit_predictor(
    inputs: TrackInputs,
    features: np.ndarray,
    *,
    config: PredictorConfig | None = None,
    progress: Progress | None = None,
) -> FeaturePredictor:
    """Fit on tracks with measured features ((n, 9), no NaN)."""
    config = config or PredictorConfig()
    say = progress or (lambda message: logger.info(message))
    mean, scale = features.mean(axis=0), features.std(axis=0)
    scale[scale == 0] = 1.0
    y = (features - mean) / scale
    n = len(inputs)

    # Out-of-fold stage-1 outputs and encodings: stage 2 must learn how much to trust them on
    # tracks they have not seen (an in-sample artist mean would look perfect).
    ridge_oof = np.zeros((n, N_FEATURES))
    enc_oof: dict[str, np.ndarray] = {}
    folds = KFold(config.folds, shuffle=True, random_state=config.seed)
    for k, (fit_idx, out_idx) in enumerate(folds.split(np.arange(n))):
        say(f"stage 1: fold {k + 1}/{config.folds}")
        fit_in, out_in = inputs.take(fit_idx), inputs.take(out_idx)
        vectorizers, ridge = _fit_stage1(config, fit_in, y[fit_idx])
        partial = FeaturePredictor(
            config,
            mean,
            scale,
            vectorizers,
            ridge,
            _encoders(config, fit_in, y[fit_idx]),
            {},
            {},
            [],
        )
        ridge_oof[out_idx] = ridge.predict(partial.sparse(out_in))
        for name, block in partial.encode(out_in).items():
            enc_oof.setdefault(name, np.zeros((n, block.shape[1])))[out_idx] = block

    say("stage 1: full fit")
    vectorizers, ridge = _fit_stage1(config, inputs, y)
    model = FeaturePredictor(
        config,
        mean,
        scale,
        vectorizers,
        ridge,
        _encoders(config, inputs, y),
        _codes(inputs.genres),
        _codes(inputs.subgenres),
        [],
    )
    x = model.dense(inputs, ridge_oof, enc_oof)
    iterations = (
        _select_iterations(config, x, y, say)
        if config.select_iterations
        else [config.hgb_max_iter] * N_FEATURES
    )
    for j, name in enumerate(FEATURES):
        say(f"stage 2: {name} ({j + 1}/{N_FEATURES}), {iterations[j]} trees")
        with _one_thread():
            model.boosters.append(_booster(config, iterations[j]).fit(x, y[:, j]))
    return model


def _booster(config: PredictorConfig, max_iter: int) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(
        max_iter=max_iter,
        learning_rate=config.hgb_learning_rate,
        max_leaf_nodes=config.hgb_max_leaf_nodes,
        min_samples_leaf=config.hgb_min_samples_leaf,
        l2_regularization=config.hgb_l2,
        # Genre and subgenre go in as plain codes, not categorical_features: sklearn then
        # runs a ColumnTransformer on every predict (measured: ~70% of predict time).
        categorical_features=None,
        early_stopping=False,
        random_state=config.seed,
    )


def _select_iterations(
    config: PredictorConfig, x: np.ndarray, y: np.ndarray, say: Progress
) -> list[int]:
    """Per feature: the fewest trees whose R² on a held-out fifth of the rows is within
    `iteration_tolerance` of the best any count up to hgb_max_iter reached."""
    order = np.random.default_rng(config.seed).permutation(len(x))
    held, fit = order[: len(x) // 5], order[len(x) // 5 :]
    chosen = []
    for j, name in enumerate(FEATURES):
        say(f"stage 2: choosing the trees for {name} ({j + 1}/{N_FEATURES})")
        truth = y[held, j]
        total = float(((truth - truth.mean()) ** 2).sum()) or 1.0
        with _one_thread():
            booster = _booster(config, config.hgb_max_iter).fit(x[fit], y[fit, j])
            r2 = [
                1 - float(((truth - p) ** 2).sum()) / total for p in booster.staged_predict(x[held])
            ]
        best = max(r2)
        enough = next(
            n for n, score in enumerate(r2, 1) if score >= best - config.iteration_tolerance
        )
        chosen.append(min(config.hgb_max_iter, max(config.min_iterations, enough)))
    return chosen


def r2_mae(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """r2_<feature>, mae_<feature> and r2_mean over the 9 features."""
    out: dict[str, float] = {}
    r2s = []
    for j, name in enumerate(FEATURES):
        resid = truth[:, j] - pred[:, j]
        total = ((truth[:, j] - truth[:, j].mean()) ** 2).sum()
        r2 = float(1 - (resid**2).sum() / total) if total > 0 else 0.0
        out[f"r2_{name}"] = r2
        out[f"mae_{name}"] = float(np.abs(resid).mean())
        r2s.append(r2)
    out["r2_mean"] = float(np.mean(r2s))
    return out


def calibrate(
    model: FeaturePredictor, inputs: TrackInputs, truth: np.ndarray, pred: np.ndarray
) -> None:
    """Interval half-widths and confidence per support level, from held-out predictions."""
    levels = np.array(model.support(inputs))
    for level in ("duplicate", "album", "artist", "text"):
        mask = levels == level
        if mask.sum() < 20:
            continue
        abs_err = np.abs(truth[mask] - pred[mask])
        model.residual_q[level] = np.quantile(abs_err, 0.8, axis=0)
        model.support_r2[level] = r2_mae(truth[mask], pred[mask])["r2_mean"]


def describe(model: FeaturePredictor) -> dict[str, Any]:
    """What the model is, for its metadata."""
    c = model.config
    return {
        "stage1": "tfidf(" + ", ".join(model.vectorizers) + ") -> ridge (9 outputs)",
        "stage2": "HistGradientBoostingRegressor per feature over ridge outputs + out-of-fold artist/album/duplicate/subgenre means and counts + genre, subgenre codes, popularity, release year",
        "char_ngrams": c.char_ngrams,
        "title_ngram_max": c.title_ngram_max,
        "album_words": c.album_words,
        "hgb_max_leaf_nodes": c.hgb_max_leaf_nodes,
        "ridge_alpha": c.ridge_alpha,
        "hgb_max_iter": c.hgb_max_iter,
        "trees_per_feature": dict(zip(FEATURES, (b.n_iter_ for b in model.boosters), strict=True)),
        "hgb_learning_rate": c.hgb_learning_rate,
        "smoothing": c.smoothing,
        "folds": c.folds,
    }
