"""Login throttling, token revocation, security headers, and secrets refused in production."""

import pytest

from api.settings import ApiSettings
from core.settings import platform_settings
from tests.fixtures.app import login
from tests.fixtures.factories import PASSWORD


def test_failed_logins_lock_the_account_and_are_audited(api, registry, db):
    registry.area()
    registry.user("zengdu", "county", "421303")
    answers = [api.post("/api/v1/auth/token", data={"username": "zengdu", "password": "wrong"}).status_code
               for _ in range(7)]
    assert answers == [401] * 5 + [423] * 2  # the default threshold is five in a row
    blocked = api.post("/api/v1/auth/token", data={"username": "zengdu", "password": PASSWORD})
    assert blocked.status_code == 423 and 55 <= int(blocked.headers["retry-after"]) <= 60
    actions = {r["action"]: r["n"] for r in db.execute(
        "SELECT action, count(*) AS n FROM audit_log WHERE username = 'zengdu' GROUP BY action")}
    assert actions == {"login.failed": 5, "login.locked": 1, "login.refused_locked": 3}


def test_a_client_that_keeps_failing_is_throttled_alone(api, registry):
    registry.area()
    registry.user("zengdu", "county", "421303")
    for i in range(10):  # ten names, so no account locks: only the address is held back
        assert api.post("/api/v1/auth/token", data={"username": f"guess-{i}", "password": "x"}).status_code == 401
    throttled = api.post("/api/v1/auth/token", data={"username": "zengdu", "password": PASSWORD})
    assert throttled.status_code == 429 and throttled.headers["retry-after"] == "60"
    assert "your address" in throttled.json()["detail"]


def test_login_input_that_the_database_cannot_store_is_refused(api):
    for username in ("ad\x00min", "a" * 129, ""):
        r = api.post("/api/v1/auth/token", data={"username": username, "password": "x"})
        assert r.status_code == 422, (username, r.text)
        assert r.json()["errors"][0]["loc"][-1] == "username"


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
