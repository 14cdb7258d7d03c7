"""What the equity lens judges (env prefix EQUITY_): configuration, not code."""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class EquitySettings(BaseSettings):
    """The fewest schools a coefficient of variation is judged over."""

    model_config = SettingsConfigDict(env_prefix="EQUITY_", extra="ignore")

    # Over one school a CV is 0.000 and reads as perfectly balanced; over two or three it means nothing.
    min_schools: int = Field(5, ge=2, le=1000, description="a county group with fewer schools is 样本不足: "
                                                           "its coefficient is not judged against a target")


@lru_cache
def equity_settings() -> EquitySettings:
    """The equity settings, read once from the environment."""
    return EquitySettings()
