"""Thresholds and windows of the metrics (env prefix METRICS_): configuration, not code."""

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class MetricsSettings(BaseSettings):
    """Windows over which figures are computed and the bars they are judged against."""

    model_config = SettingsConfigDict(env_prefix="METRICS_", extra="ignore")

    # "now" figures may be this old before a request refreshes them itself; the rollups
    # service refreshes every 5 s, so requests only step in when it has stalled
    now_max_age_s: float = 15.0
    use_window_days: int = 7  # calendar days behind "use per board per school day"
    silent_hours: int = 24  # a device quiet this long counts as silent
    poor_loss_pct: float = 5.0  # campus-network vendor band: < 3 good, 3–5 fair, ≥ 5 poor
    fair_loss_pct: float = 3.0
    # colour bands the cockpit draws rates in (≥ good: green, ≥ fair: amber, below: red)
    online_rate_good: float = 0.95
    online_rate_fair: float = 0.85
    opening_rate_good: float = 0.90
    opening_rate_fair: float = 0.75


@lru_cache
def metrics_settings() -> MetricsSettings:
    """The metrics settings, read once from the environment."""
    return MetricsSettings()
