"""m2 settings: env prefix M2_, shared fields from CommonSettings."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from musicspace_shared.settings import CommonSettings

MODEL_FILE = "tfidf_gbr_models.pkl"
USER_SVM_DIR = "user_svm_models"


class Settings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="M2_")

    # A user needs this many positive tracks for a personal SVM; fewer get the fallback.
    min_tracks_for_svm: int = 10
    # Sampled catalog negatives per positive for the per-user SVM.
    negatives_per_positive: int = 4
    svm_c: float = 0.5
    catalog_check_s: float = 60.0  # see CommonSettings
    cpu_workers: int = 2  # prediction, scoring
    # Per-user SVMs are trained behind the requests (musicspace_shared.background): at most
    # this many users wait for one (more are dropped and asked again on their next visit).
    svm_queue_limit: int = Field(1000, ge=1)
    # From this many tracks up, recommend and similar find their best rows through the
    # candidate index (musicspace_m2.candidates: the same rows as scoring every track, exact
    # bounds) instead of scoring the whole catalog; below, scoring everything is cheaper.
    candidate_index_min_tracks: int = Field(50_000, ge=0)
    # `musicspace train m2` fits on at most this many measured tracks (a seeded sample; None:
    # all, the default). Sampling costs accuracy: on the 200k-track scale set, 90k of the 180k
    # measured tracks gave holdout r2_mean 0.257 against 0.307 for all (artists seen less
    # often); all 180k took 432 s on the loaded bench machine, about linear in rows.
    train_max_tracks: int | None = Field(None, ge=1000)

    @property
    def model_path(self) -> Path:
        return self.model_dir("M2") / MODEL_FILE

    @property
    def user_svm_root(self) -> Path:
        return self.model_dir("M2") / USER_SVM_DIR
