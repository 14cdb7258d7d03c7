"""Settings of the API service (env prefix API_)."""

import secrets
from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict

from core.settings import platform_settings

PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "dev", "development", "placeholder"}


class ApiSettings(BaseSettings):
    """Token signing, CORS and login throttling of the API."""

    model_config = SettingsConfigDict(env_prefix="API_", extra="ignore")

    secret_key: str | None = None
    token_ttl_minutes: int = 12 * 60
    cors_origins: list[str] = []
    login_attempts_per_minute: int = 10
    pool_size: int = 10
    host: str = "127.0.0.1"
    port: int = 8000

    def signing_key(self) -> str:
        """The token signing key; a random one in development, refused if missing or a placeholder elsewhere."""
        if self.secret_key and self.secret_key.lower() not in PLACEHOLDER_SECRETS and len(self.secret_key) >= 32:
            return self.secret_key
        if platform_settings().env in ("development", "test"):
            return _development_key()
        raise RuntimeError("API_SECRET_KEY must be set to a random value of at least 32 characters")


@lru_cache
def _development_key() -> str:
    return secrets.token_urlsafe(48)


@lru_cache
def api_settings() -> ApiSettings:
    """The API settings, read once from the environment."""
    return ApiSettings()
