"""Bars of the communities (env prefix COMMUNITIES_): configuration, not code.

The coverage targets are rows of the target table (`community_coverage`; the seed writes the
policy's 70 % by the end of 2024 and 80 % by the end of 2025), set and edited like any other
target (api/targets)."""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommunitySettings(BaseSettings):
    """The size cap of a community and the weeks its pairs' activity is counted over."""

    model_config = SettingsConfigDict(env_prefix="COMMUNITIES_", extra="ignore")

    member_cap: int = Field(10, ge=1, description="Yunnan: at most this many member schools per community")
    activity_weeks: int = Field(4, ge=1, le=52, description="weeks of remote lessons counted as pair activity")


@lru_cache
def community_settings() -> CommunitySettings:
    """The community settings, read once from the environment."""
    return CommunitySettings()
