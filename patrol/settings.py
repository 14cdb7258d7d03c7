"""Settings of the patrol service (env prefix PATROL_)."""

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class PatrolSettings(BaseSettings):
    """How often the patrol evaluates, reminds and escalates, and how it sends notices."""

    model_config = SettingsConfigDict(env_prefix="PATROL_", extra="ignore")

    cycle_s: float = 15.0
    # A cycle looks at what changed; this often (and on start) it looks at every device whatever
    # its bookkeeping says, so nothing it cannot see change waits longer than this (0: never).
    full_every_s: float = 3600.0
    reminder_s: int = 30 * 60  # still unacknowledged this long after the last notice: remind
    escalate_after_s: int = 60 * 60  # unacknowledged this long at one level: the next level up
    max_escalation: int = 3
    default_mqtt_topic: str = "edu/ops/alerts"  # teams without a topic of their own
    webhook_timeout_s: float = 5.0
    smtp_host: str = ""  # empty: no e-mail
    smtp_port: int = 25
    smtp_from: str = "patrol@edu.local"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_timeout_s: float = 10.0
    dashboard_url: str = "http://127.0.0.1:8050"  # linked from notices
    daily_round_at: str = "07:00"  # local time of the daily patrol round
    health_host: str = "127.0.0.1"
    health_port: int = 0  # 0: no health/metrics endpoint


@lru_cache
def patrol_settings() -> PatrolSettings:
    """The patrol settings, read once from the environment."""
    return PatrolSettings()
