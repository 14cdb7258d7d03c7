"""Accounts that resist guessing: the password policy, the first password a user must replace, the
self-service change, and the lockout that a wrong current password counts toward."""

import pytest

from api.auth import policy
from tests.api.test_admin import A
from tests.fixtures.app import login, via_cockpit
from tests.fixtures.factories import PASSWORD

TOKEN = "/api/v1/auth/token"
CHANGE = "/api/v1/auth/password"


@pytest.mark.parametrize("password, reason", [
    ("Ab3defghi", "at least 10 characters"), ("abcdefghijk", "letters and digits"),
    ("12345678901", "letters and digits"), ("xx-zengdu-2024", "must not contain the username"),
    ("Password2024!", "too common"), ("p@ssw0rd12345", "too common"), ("qwerty123456", "too common"),
    ("1qaz2wsx3edc", "too common"), ("a1a1a1a1a1a1", "too common"), ("x" * 129 + "1", "at most 128"),
])
def test_the_policy_refuses_with_a_reason(password, reason):
    with pytest.raises(policy.PolicyError) as refused:
        policy.check(password, "zengdu")
    assert reason in refused.value.en and refused.value.zh and " / " in str(refused.value)


@pytest.mark.parametrize("password", ["Zx9-correct-horse", "随州曾都2024学校", "tiger-lily-77", "8bq3kz1mwr"])
def test_the_policy_accepts_a_good_password(password):
    policy.check(password, "zengdu")


def test_generated_passwords_pass_the_policy():
    passwords = {policy.generate("zengdu") for _ in range(50)}
    assert len(passwords) == 50 and all(len(p) >= 16 for p in passwords)
    for p in passwords:
        policy.check(p, "zengdu")


def test_the_minimum_length_is_a_setting(login_settings):
    login_settings(password_min_length=14)
    with pytest.raises(policy.PolicyError, match="at least 14"):
        policy.check("Zx9-correct-h", "zengdu")
    assert len(policy.generate("zengdu")) >= 16


@pytest.fixture
def people(registry):
    registry.area()
    registry.user("suizhou-admin", "city", "421300", role="admin")
    registry.user("zengdu", "county", "421303")
    return registry


def test_a_new_user_must_choose_their_own_password_first(api, people, db):
    created = api.post(A + "/users", json={"username": "suixian", "display_name": "随县", "role": "manager",
                                           "scope_level": "county", "scope_code": "421303"},
                       headers=login(api, "suizhou-admin")).json()
    first = created["initial_password"]
    token = api.post(TOKEN, data={"username": "suixian", "password": first}).json()
    assert token["must_change_password"] is True
    held = {"Authorization": f"Bearer {token['access_token']}"}
    me = api.get("/api/v1/auth/me", headers=held)
    assert me.status_code == 200 and me.json()["must_change_password"] is True
    for path in ("/api/v1/scopes/county/421303", "/api/v1/figures", "/api/v1/auth/locks"):
        r = api.get(path, headers=held)
        assert r.status_code == 403 and "change your password first" in r.json()["detail"], path

    weak = api.post(CHANGE, json={"current_password": first, "new_password": "suixian2024x"}, headers=held)
    assert weak.status_code == 422 and "用户名" in weak.json()["detail"] and "username" in weak.json()["detail"]
    same = api.post(CHANGE, json={"current_password": first, "new_password": first}, headers=held)
    assert same.status_code == 422 and "differ" in same.json()["detail"]
    assert api.post(CHANGE, json={"current_password": first, "new_password": "Zx9-correct-horse"},
                    headers=held).status_code == 204
    assert api.get("/api/v1/scopes/county/421303", headers=held).status_code == 200  # the same session goes on
    again = api.post(TOKEN, data={"username": "suixian", "password": "Zx9-correct-horse"}).json()
    assert again["must_change_password"] is False
    assert api.post(TOKEN, data={"username": "suixian", "password": first}).status_code == 401
    row = db.execute("SELECT password_set_at > created_at AS later FROM app_user WHERE username = 'suixian'")
    assert row.fetchone()["later"]
    audited = db.execute("SELECT detail::text AS d FROM audit_log WHERE action = 'password.change'").fetchall()
    assert len(audited) == 1 and "Zx9" not in audited[0]["d"]


def test_a_reset_holds_every_session_of_the_user(api, people):
    held = login(api, "zengdu")
    assert api.get("/api/v1/scopes/county/421303", headers=held).status_code == 200
    reset = api.post(A + "/users/zengdu/password", json={}, headers=login(api, "suizhou-admin")).json()
    assert api.get("/api/v1/scopes/county/421303", headers=held).status_code == 403
    assert api.post(CHANGE, json={"current_password": reset["password"], "new_password": "tiger-lily-77"},
                    headers=held).status_code == 204
    assert api.get("/api/v1/scopes/county/421303", headers=held).status_code == 200
    assert api.post("/api/v1/auth/logout", headers=held).status_code == 204


def test_six_wrong_passwords_lock_the_account_until_an_administrator_lifts_it(api, people, db):
    answers = [api.post(TOKEN, data={"username": "zengdu", "password": "wrong"}).status_code for _ in range(6)]
    assert answers == [401] * 5 + [423]
    assert api.post(TOKEN, data={"username": "zengdu", "password": PASSWORD}).status_code == 423
    assert api.delete("/api/v1/auth/locks/zengdu", headers=login(api, "suizhou-admin")).status_code == 204
    assert api.post(TOKEN, data={"username": "zengdu", "password": PASSWORD}).status_code == 200
    actions = {r["action"] for r in db.execute("SELECT action FROM audit_log WHERE target = 'zengdu'")}
    assert "login.unlock" in actions


def test_a_wrong_current_password_counts_toward_the_lockout(api, people, cockpit_secret):
    held = login(api, "zengdu")
    for _ in range(5):
        r = api.post(CHANGE, json={"current_password": "guess", "new_password": "tiger-lily-77"}, headers=held)
        assert r.status_code == 403 and "current password is wrong" in r.json()["detail"]
    locked = api.post(CHANGE, json={"current_password": PASSWORD, "new_password": "tiger-lily-77"}, headers=held)
    assert locked.status_code == 423 and int(locked.headers["retry-after"]) > 0
    elsewhere = via_cockpit("192.0.2.1")  # the session's own address is the owner's: the lock spares it
    assert api.post(TOKEN, data={"username": "zengdu", "password": PASSWORD}, headers=elsewhere).status_code == 423


def test_a_password_past_its_age_must_be_changed(api, people, db, login_settings):
    login_settings(password_max_age_days=90)
    db.execute("UPDATE app_user SET password_set_at = now() - interval '91 days' WHERE username = 'zengdu'")
    token = api.post(TOKEN, data={"username": "zengdu", "password": PASSWORD}).json()
    assert token["must_change_password"] is True
    assert api.get("/api/v1/figures", headers={"Authorization": f"Bearer {token['access_token']}"}).status_code == 403
    assert api.get("/api/v1/figures", headers=login(api, "suizhou-admin")).status_code == 200
