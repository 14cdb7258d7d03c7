"""Settings shared by every deployable: where the database and the broker are.

Each deployable adds its own settings class with its own prefix; all of them are
read through cached functions so tests can override the environment first.
"""

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from pydantic import BaseModel, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class BrokerAddress(BaseModel):
    """An MQTT broker address split out of an mqtt:// or mqtts:// URL."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False


def parse_mqtt_url(url: str) -> BrokerAddress:
    """Split mqtt://user:password@host:port (mqtts:// for TLS) into its parts."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"unsupported MQTT URL scheme {parts.scheme!r}: use mqtt:// or mqtts://")
    tls = parts.scheme in ("mqtts", "ssl")
    return BrokerAddress(
        host=parts.hostname or "localhost",
        port=parts.port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


class PlatformSettings(BaseSettings):
    """Where the shared database and broker live, and how the platform runs."""

    # An empty variable counts as unset (compose passes `${VAR:-}` through as "")
    model_config = SettingsConfigDict(env_prefix="COCKPIT_", extra="ignore", env_ignore_empty=True)

    env: Literal["development", "test", "production"] = "development"
    database_url: str | None = None
    mqtt_url: str | None = None
    mqtt_ca_file: Path | None = None  # CA the services trust for an mqtts:// broker
    # This process's broker account (`svc.ingest-1`, `svc.patrol`, `svc.api`…) when COCKPIT_MQTT_URL
    # carries no credentials: its password derives from the platform's broker secret below.
    mqtt_username: str | None = None
    # The secret every service account's password derives from (core.credentials); `cockpit
    # broker-auth` writes the broker's hashes from it.
    mqtt_platform_password: SecretStr | None = None
    # The broker's own TLS listener (written by `cockpit broker-auth`, opened by `cockpit up`).
    mqtt_tls_cert_file: Path | None = None
    mqtt_tls_key_file: Path | None = None
    mqtt_tls_port: int = 8883
    # The provisioning secret every device's MQTT password derives from (core.credentials): the
    # registry's administration hands a new device its password, `cockpit broker-auth` the broker its hash.
    device_secret: SecretStr | None = None
    # The broker as devices reach it (mqtt:// or mqtts://, no credentials), printed on their
    # provisioning sheets; unset, COCKPIT_MQTT_URL's host and port.
    mqtt_public_url: str | None = None
    data_dir: Path = PROJECT_ROOT / "var"
    timezone: str = "Asia/Shanghai"
    log_level: str = "INFO"

    def require_database_url(self) -> str:
        """The configured database URL, or a clear error if none is set."""
        if not self.database_url:
            raise RuntimeError("COCKPIT_DATABASE_URL is not set (run 'cockpit up' for an embedded stack)")
        return self.database_url

    def require_broker(self) -> BrokerAddress:
        """The configured broker address and this process's credentials, or a clear error if none is set.

        Credentials in COCKPIT_MQTT_URL win; otherwise COCKPIT_MQTT_USERNAME names the service's
        own account and its password derives from COCKPIT_MQTT_PLATFORM_PASSWORD.
        """
        if not self.mqtt_url:
            raise RuntimeError("COCKPIT_MQTT_URL is not set (run 'cockpit up' for an embedded stack)")
        address = parse_mqtt_url(self.mqtt_url)
        if address.username is None and self.mqtt_username:
            from core.credentials import derived_password

            if not self.mqtt_platform_password:
                raise RuntimeError(f"COCKPIT_MQTT_USERNAME is {self.mqtt_username} but COCKPIT_MQTT_PLATFORM_PASSWORD, "
                                   "which its password derives from, is not set")
            address = address.model_copy(update={
                "username": self.mqtt_username,
                "password": derived_password(self.mqtt_platform_password.get_secret_value(), self.mqtt_username)})
        return address


@lru_cache
def platform_settings() -> PlatformSettings:
    """The platform settings, read once from the environment."""
    return PlatformSettings()


def school_zone(name: str | None = None) -> ZoneInfo:
    """The schools' time zone: `name` if given, else the platform's COCKPIT_TIMEZONE."""
    return ZoneInfo(name or platform_settings().timezone)
