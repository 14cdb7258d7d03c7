"""Settings of the API service (env prefix API_)."""

import secrets
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.credentials import derive_cockpit_secret
from core.settings import platform_settings

PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "dev", "development", "placeholder"}


class ApiSettings(BaseSettings):
    """Token signing, CORS, login throttling and account lockout of the API.

    Failed logins are throttled per client address (`login_attempts_per_minute`) and counted per
    account: `lockout_threshold` failures in a row lock the account for `lockout_base_s`, and each
    further failure after a lock locks it again, `lockout_factor` times longer, up to
    `lockout_max_s`. A success or an administrator ends the streak; so does a quiet
    `lockout_forget_s`. A lock does not hold for an address the account logged in from within
    `lockout_trusted_days` (0: none), so a guesser cannot keep the owner out. Passwords follow api/auth/policy.py: at least `password_min_length`
    characters, at most `password_max_length`; one set longer ago than `password_max_age_days`
    (0: never) must be changed before anything else, like a generated one. `cockpit_secret`
    (API_COCKPIT_SECRET, shared with the cockpit) lets the cockpit name the browser it logs in
    for; unset, it is derived from the signing key.
    """

    model_config = SettingsConfigDict(env_prefix="API_", extra="ignore")

    secret_key: str | None = None
    token_ttl_minutes: int = 12 * 60
    cors_origins: list[str] = []
    login_attempts_per_minute: int = Field(default=10, ge=1)
    lockout_threshold: int = Field(default=5, ge=1)
    lockout_base_s: float = Field(default=60.0, gt=0)
    lockout_factor: float = Field(default=2.0, ge=1)
    lockout_max_s: float = Field(default=3600.0, gt=0)
    lockout_forget_s: float = Field(default=86400.0, gt=0)
    lockout_trusted_days: int = Field(default=30, ge=0, le=3650)
    password_min_length: int = Field(default=10, ge=8, le=128)
    password_max_length: int = Field(default=128, ge=16, le=1024)
    password_max_age_days: int = Field(default=0, ge=0, le=3650)
    cockpit_secret: str | None = None
    pool_size: int = 10
    host: str = "127.0.0.1"
    port: int = 8000

    def lockout_seconds(self, locks: int) -> float:
        """How long the `locks`-th lock in a row lasts (1 = the first)."""
        return min(self.lockout_max_s, self.lockout_base_s * self.lockout_factor ** max(0, locks - 1))

    def cockpit_credential(self) -> str | None:
        """The secret the cockpit proves itself with; None when forwarding is off (development without a key)."""
        if self.cockpit_secret:
            if len(self.cockpit_secret) < 32 or self.cockpit_secret.lower() in PLACEHOLDER_SECRETS:
                raise RuntimeError("API_COCKPIT_SECRET must be a random value of at least 32 characters")
            return self.cockpit_secret
        if self.secret_key and self.signing_key() == self.secret_key:
            return derive_cockpit_secret(self.secret_key)
        return None

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
