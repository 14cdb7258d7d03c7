"""Settings of the cockpit (env prefix DASHBOARD_)."""

from functools import lru_cache

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.credentials import derive_cockpit_secret


class DashboardSettings(BaseSettings):
    """Where the API is, how often the cockpit refreshes, and how it vouches for the browsers it logs in.

    The API throttles logins per client address; through the cockpit every login would come from
    the cockpit's own server, so the cockpit names the browser and proves with the secret it shares
    with the API that the name comes from the cockpit (see `api.auth.service.client_address`). The
    secret is API_COCKPIT_SECRET (DASHBOARD_COCKPIT_SECRET also works), or else derived from
    API_SECRET_KEY when the cockpit is given that; with neither, logins go out without a browser
    address and the API throttles them by the cockpit's.
    """

    model_config = SettingsConfigDict(env_prefix="DASHBOARD_", extra="ignore")

    api_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8050
    refresh_ms: int = 5000
    request_timeout_s: float = 10.0
    cockpit_secret: str | None = Field(
        default=None, validation_alias=AliasChoices("DASHBOARD_COCKPIT_SECRET", "API_COCKPIT_SECRET"))
    api_secret_key: str | None = Field(default=None, validation_alias="API_SECRET_KEY", repr=False)

    def cockpit_credential(self) -> str | None:
        """The secret the cockpit proves itself to the API with, if it has one."""
        if self.cockpit_secret:
            return self.cockpit_secret
        return derive_cockpit_secret(self.api_secret_key) if self.api_secret_key else None


@lru_cache
def dashboard_settings() -> DashboardSettings:
    """The cockpit settings, read once from the environment."""
    return DashboardSettings()
