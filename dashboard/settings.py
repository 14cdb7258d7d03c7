"""Settings of the cockpit (env prefix DASHBOARD_)."""

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class DashboardSettings(BaseSettings):
    """Where the API is and how often the cockpit refreshes."""

    model_config = SettingsConfigDict(env_prefix="DASHBOARD_", extra="ignore")

    api_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8050
    refresh_ms: int = 5000
    request_timeout_s: float = 10.0


@lru_cache
def dashboard_settings() -> DashboardSettings:
    """The cockpit settings, read once from the environment."""
    return DashboardSettings()
