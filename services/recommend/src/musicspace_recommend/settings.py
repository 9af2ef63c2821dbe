"""recommend settings: env prefix RECOMMEND_, shared fields (DATABASE_URL, M1_URL, ...) from CommonSettings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from musicspace_recommend.arms import Arm, parse_arms
from musicspace_shared.settings import CommonSettings

TASTE_MODELS = ("m1", "m2", "m3")  # models that rank from the user's data
MODELS = (*TASTE_MODELS, "llm")  # llm ranks from a query (and the user's profile)


class Settings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="RECOMMEND_")

    # A/B split (musicspace_recommend.arms): "<strategy>:<share>,...", strategies blend, m1,
    # m2, m3, popular. The salt makes the assignment; change it to reshuffle users.
    arms: str = "blend:100"
    arm_salt: str = Field("musicspace", min_length=1)
    # What the blend arm serves: "rrf" (reciprocal rank fusion, musicspace_recommend.fusion)
    # or one model alone. Chosen by `musicspace eval playlists`: with the k and weights below
    # the blend beat every single model there (services/recommend/README.md has the figures);
    # were it ever to lose, name the best model here.
    blend_method: Literal["rrf", "m1", "m2", "m3"] = "rrf"
    # k and the weights were chosen on the eval's rankings (one half of the users, checked
    # on the other; README). Equal weights with k = 60 lost to m3 alone (0.530 vs 0.559).
    rrf_k: float = Field(30.0, gt=0, le=10_000)
    # Each model's weight in the fusion (0 leaves it out); llm's only counts for a query
    # (not tuned offline: the search eval has no users; as strong as m3, so the query's order
    # is not drowned by the taste models).
    m1_weight: float = Field(1.0, ge=0, le=100)
    m2_weight: float = Field(0.25, ge=0, le=100)
    m3_weight: float = Field(4.0, ge=0, le=100)
    llm_weight: float = Field(4.0, ge=0, le=100)
    # Tracks asked of each model (more than the answer's limit: the fusion needs overlap).
    depth: int = Field(50, ge=1, le=200)
    # Per-model deadline: a model slower than this is left out of the answer ("timeout").
    m1_deadline_s: float = Field(2.0, gt=0, le=60)
    m2_deadline_s: float = Field(2.0, gt=0, le=60)
    m3_deadline_s: float = Field(2.0, gt=0, le=60)
    llm_deadline_s: float = Field(3.0, gt=0, le=60)
    # Users with no data (or when every model fails): popular and newly added tracks per
    # genre, read from the DB at most every popular_cache_s.
    popular_cache_s: float = Field(60.0, ge=0, le=86_400)
    popular_per_genre: int = Field(20, ge=1, le=500)
    new_per_genre: int = Field(10, ge=0, le=500)

    @field_validator("arms")
    @classmethod
    def _valid_arms(cls, value: str) -> str:
        parse_arms(value)
        return value

    @property
    def arm_list(self) -> tuple[Arm, ...]:
        return parse_arms(self.arms)

    def weight(self, model: str) -> float:
        return float(getattr(self, f"{model}_weight"))

    def deadline_s(self, model: str) -> float:
        return float(getattr(self, f"{model}_deadline_s"))
