"""Targets and bars of the communities (env prefix COMMUNITIES_): configuration, not code."""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommunitySettings(BaseSettings):
    """Coverage targets of compulsory-education schools and the size cap of a community."""

    model_config = SettingsConfigDict(env_prefix="COMMUNITIES_", extra="ignore")

    # share of compulsory-education schools inside a community, by the end of each year
    coverage_targets: dict[int, float] = Field(default_factory=lambda: {2024: 0.70, 2025: 0.80})
    member_cap: int = Field(10, ge=1, description="Yunnan: at most this many member schools per community")
    activity_weeks: int = Field(4, ge=1, le=52, description="weeks of remote lessons counted as pair activity")


@lru_cache
def community_settings() -> CommunitySettings:
    """The community settings, read once from the environment."""
    return CommunitySettings()
