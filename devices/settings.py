"""Settings of the device simulator (env prefix SIM_)."""

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class SimulatorSettings(BaseSettings):
    """How often simulated devices report and how often things go wrong."""

    model_config = SettingsConfigDict(env_prefix="SIM_", extra="ignore")

    interval_s: int = 60  # one reading a minute per device, as the province sizing assumes
    outage_per_hour: float = 0.03  # chance a device drops off the network in a given hour
    outage_minutes: tuple[int, int] = (3, 20)
    limit: int | None = None  # simulate only the first N devices
    device_secret: str | None = None  # derives per-device MQTT passwords when the broker needs them


@lru_cache
def simulator_settings() -> SimulatorSettings:
    """The simulator settings, read once from the environment."""
    return SimulatorSettings()
