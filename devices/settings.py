"""Settings of the device simulator (env prefix SIM_)."""

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class SimulatorSettings(BaseSettings):
    """How often simulated devices report and how often things go wrong."""

    model_config = SettingsConfigDict(env_prefix="SIM_", extra="ignore")

    interval_s: float = 60  # one reading a minute per device, as the province sizing assumes
    rate: float | None = None  # load mode: readings per second over all devices (sets the interval)
    fault_scale: float = 1.0  # how often faults strike, relative to devices.faults.FAULTS (0: never)
    skewed_share: float = 0.01  # devices whose clock is off by up to a quarter of an hour
    duplicate_share: float = 0.002  # messages published twice
    late_share: float = 0.002  # messages published after the device's next one
    limit: int | None = None  # simulate only the first N devices
    snapshot_interval_s: float = 60  # a still of each camera this often during its room's lessons (0: none)
    device_secret: str | None = None  # derives per-device MQTT passwords when the broker needs them


@lru_cache
def simulator_settings() -> SimulatorSettings:
    """The simulator settings, read once from the environment."""
    return SimulatorSettings()
