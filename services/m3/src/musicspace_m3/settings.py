"""m3 settings: env prefix M3_, shared fields from CommonSettings."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from musicspace_shared.settings import CommonSettings


class Settings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="M3_")
    renamed: ClassVar[dict[str, str]] = {
        **CommonSettings.renamed,
        "predict_workers": "cpu_workers",
    }

    global_model_name: str = "recommender_U2_MyInitialT_20260201.cbm"
    # Candidates ranked per request: the recall ceiling versus latency (measured in bench_m3).
    n_candidates: int = Field(600, ge=10, le=5000)
    max_per_artist: int = Field(2, ge=1, le=50)
    # Training protocol: input/target splits per user, negatives kept per query.
    train_splits: int = Field(2, ge=1, le=10)
    train_negatives_per_query: int | None = Field(200, ge=10)
    # `musicspace train m3` draws its queries from at most this many users (a seeded sample;
    # None: all); every user still counts in the co-occurrence features. Training time grows
    # with users x catalog (musicspace_shared.sampling).
    train_max_users: int | None = Field(3000, ge=10)
    iterations: int = Field(400, ge=1, le=5000)
    learning_rate: float = Field(0.08, gt=0, le=1)
    depth: int = Field(6, ge=1, le=10)
    loss_function: str = "QueryRMSE"
    train_threads: int = Field(2, ge=1, le=64)
    # Per-user fine-tuning.
    min_user_positives: int = Field(10, ge=4)
    finetune_iterations: int = Field(60, ge=1, le=2000)
    finetune_splits: int = Field(8, ge=1, le=50)
    # Concurrency: CatBoost predictions run in a bounded pool, one thread each.
    cpu_workers: int = Field(2, ge=1, le=64)
    explain_top: int = Field(200, ge=0, le=200)  # items explained (all by default)
    # Answers are reused while the user's own data, the models and the catalog are unchanged;
    # other users' newest activity reaches them within this many seconds (0 disables the cache).
    cache_ttl_s: float = Field(30.0, ge=0)
    cache_entries: int = Field(10000, ge=1)
    # Ranked candidate lists kept for paging and filters (~85 KB each at 600 candidates).
    ranked_cache_entries: int = Field(1000, ge=1)

    def ranker_params(self) -> dict[str, Any]:
        return {
            "loss_function": self.loss_function,
            "iterations": self.iterations,
            "learning_rate": self.learning_rate,
            "depth": self.depth,
            "thread_count": self.train_threads,
        }
