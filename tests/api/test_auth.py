"""Login throttling, token revocation, security headers, and secrets refused in production."""

import pytest

from api.settings import ApiSettings
from core.settings import platform_settings
from tests.fixtures.app import login
from tests.fixtures.factories import PASSWORD


def test_failed_logins_are_throttled_and_audited(api, registry, db):
    registry.area()
    registry.user("zengdu", "county", "421303")
    for _ in range(10):
        assert api.post("/api/v1/auth/token", data={"username": "zengdu", "password": "wrong"}).status_code == 401
    blocked = api.post("/api/v1/auth/token", data={"username": "zengdu", "password": PASSWORD})
    assert blocked.status_code == 429 and blocked.headers["retry-after"] == "60"
    failed = db.execute("SELECT count(*) AS n FROM audit_log WHERE action = 'login.failed'").fetchone()["n"]
    assert failed == 10


def test_logout_revokes_the_token(api, registry):
    registry.area()
    registry.user("zengdu", "county", "421303")
    headers = login(api, "zengdu")
    assert api.get("/api/v1/auth/me", headers=headers).status_code == 200
    assert api.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert api.get("/api/v1/auth/me", headers=headers).status_code == 401
    assert api.get("/api/v1/auth/me", headers={"Authorization": "Bearer not-a-token"}).status_code == 401


def test_security_headers(api):
    r = api.get("/healthz")
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    assert "https:" in api.get("/docs").headers["content-security-policy"]


def test_placeholder_secrets_are_refused_outside_development(monkeypatch):
    monkeypatch.setenv("COCKPIT_ENV", "production")
    platform_settings.cache_clear()
    try:
        for secret in (None, "change-me", "short"):
            with pytest.raises(RuntimeError, match="API_SECRET_KEY"):
                ApiSettings(secret_key=secret).signing_key()
        assert ApiSettings(secret_key="x" * 40).signing_key() == "x" * 40
    finally:
        monkeypatch.setenv("COCKPIT_ENV", "test")
        platform_settings.cache_clear()
