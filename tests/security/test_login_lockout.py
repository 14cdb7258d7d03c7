"""Failed logins lock the account they name (for longer each time), never anybody else's.

Logins made through the cockpit name the browser (`X-Cockpit-Client`) and prove with the
cockpit's secret that the cockpit says so; without the secret the header is ignored.
"""

from api.auth.service import LOCKED_DETAIL
from api.settings import ApiSettings
from tests.fixtures.app import login, via_cockpit
from tests.fixtures.factories import PASSWORD

TOKEN = "/api/v1/auth/token"


def _attempt(api, username: str, password: str = "wrong", headers: dict | None = None):
    return api.post(TOKEN, data={"username": username, "password": password}, headers=headers)


def test_ten_bad_logins_through_the_cockpit_do_not_lock_out_anyone_else(api, registry, db, cockpit_secret):
    registry.area()
    registry.user("admin", "province", "420000", role="admin")
    registry.user("zengdu", "county", "421303")
    attacker = via_cockpit("203.0.113.7")
    answers = [_attempt(api, "zengdu", headers=attacker).status_code for _ in range(10)]
    assert answers == [401] * 5 + [423] * 5
    for browser in ("198.51.100.20", "2001:db8::5"):
        r = _attempt(api, "admin", PASSWORD, headers=via_cockpit(browser))
        assert r.status_code == 200, r.text
    assert _attempt(api, "admin", PASSWORD).status_code == 200  # nor the cockpit's own address
    assert _attempt(api, "admin", PASSWORD, headers=attacker).status_code == 429  # only the failing browser waits
    clients = {r["client_ip"] for r in db.execute("SELECT client_ip FROM login_attempt WHERE username = 'zengdu'")}
    assert clients == {"203.0.113.7"}


def test_a_forwarded_address_without_the_cockpit_secret_is_ignored(api, registry, db, cockpit_secret):
    registry.area()
    registry.user("zengdu", "county", "421303")
    for i in range(10):  # a new name and a new claimed address each time: neither may buy another try
        spoofed = {"X-Cockpit-Client": f"192.0.2.{i}"} if i % 2 else via_cockpit(f"192.0.2.{i}", "not-the-secret")
        assert _attempt(api, f"guess-{i}", headers=spoofed).status_code == 401
    r = _attempt(api, "zengdu", PASSWORD, headers={"X-Cockpit-Client": "192.0.2.99"})
    assert r.status_code == 429
    assert {r["client_ip"] for r in db.execute("SELECT client_ip FROM login_attempt")} == {"testclient"}
    assert _attempt(api, "zengdu", PASSWORD, headers=via_cockpit("192.0.2.99")).status_code == 200
    assert _attempt(api, "zengdu", PASSWORD, headers=via_cockpit("not an address")).status_code == 429


def test_the_lockout_grows_and_refuses_even_the_right_password(api, registry, db, login_settings):
    login_settings(lockout_threshold=3, lockout_base_s=60, lockout_factor=2, lockout_max_s=200,
                   login_attempts_per_minute=100)
    registry.area()
    registry.user("zengdu", "county", "421303")
    assert [_attempt(api, "zengdu").status_code for _ in range(3)] == [401, 401, 401]
    seconds = []
    for _ in range(3):
        right, wrong = _attempt(api, "zengdu", PASSWORD), _attempt(api, "zengdu")
        assert right.status_code == wrong.status_code == 423
        assert right.json() == wrong.json() == {"detail": LOCKED_DETAIL}  # nothing tells the two apart
        seconds.append(int(right.headers["retry-after"]))
        db.execute("UPDATE login_lock SET locked_until = now() - interval '1 second'")  # the lock runs out
        assert _attempt(api, "zengdu").status_code == 401  # one more failure locks it again, for longer
    assert [s // 10 for s in seconds] == [6, 12, 20]  # 60 s, 120 s, then the 200 s cap
    locks = db.execute("SELECT detail FROM audit_log WHERE action = 'login.locked' ORDER BY id").fetchall()
    assert [r["detail"]["seconds"] for r in locks] == [60, 120, 200, 200]
    db.execute("UPDATE login_lock SET locked_until = now() - interval '1 second'")
    assert _attempt(api, "zengdu", PASSWORD).status_code == 200  # a success ends the streak
    assert db.execute("SELECT count(*) AS n FROM login_lock").fetchone()["n"] == 0
    assert [ApiSettings(lockout_base_s=10, lockout_factor=3, lockout_max_s=100).lockout_seconds(n)
            for n in (1, 2, 3, 4)] == [10, 30, 90, 100]


def _lock(api, username: str) -> None:
    for _ in range(5):
        _attempt(api, username)
    assert _attempt(api, username, PASSWORD).status_code == 423


def test_an_admin_lifts_the_lock(api, registry, db):
    registry.area()
    registry.user("admin", "province", "420000", role="admin")
    registry.user("zengdu", "county", "421303")
    admin = login(api, "admin")
    _lock(api, "zengdu")
    listed = api.get("/api/v1/auth/locks", headers=admin).json()
    assert [(r["username"], r["locked"], r["failures"]) for r in listed] == [("zengdu", True, 5)]
    assert api.delete("/api/v1/auth/locks/zengdu", headers=admin).status_code == 204
    assert _attempt(api, "zengdu", PASSWORD).status_code == 200
    audit = db.execute("SELECT username, detail FROM audit_log WHERE action = 'login.unlock'").fetchall()
    assert audit == [{"username": "admin", "detail": {"was_locked": True}}]


def test_only_an_admin_of_the_users_scope_may_lift_it(api, registry):
    registry.area()
    registry.area(city="420100", county="420102", names=("湖北省", "武汉市", "江岸区"))
    registry.user("province-manager", "province", "420000", role="manager")
    registry.user("wuhan-admin", "city", "420100", role="admin")
    registry.user("zengdu", "county", "421303")
    manager, wuhan = login(api, "province-manager"), login(api, "wuhan-admin")
    _lock(api, "zengdu")
    assert api.delete("/api/v1/auth/locks/zengdu", headers=manager).status_code == 403
    assert api.get("/api/v1/auth/locks", headers=manager).status_code == 403
    assert api.delete("/api/v1/auth/locks/zengdu", headers=wuhan).status_code == 404  # 随州 is outside 武汉
    assert api.get("/api/v1/auth/locks", headers=wuhan).json() == []
    assert _attempt(api, "zengdu", PASSWORD).status_code == 423


def test_a_guesser_elsewhere_cannot_lock_the_owner_out_of_their_usual_address(api, registry, db, cockpit_secret):
    registry.area()
    registry.user("admin", "province", "420000", role="admin")
    owner, guesser, stranger = via_cockpit("198.51.100.20"), via_cockpit("203.0.113.7"), via_cockpit("192.0.2.1")
    assert _attempt(api, "admin", PASSWORD, headers=owner).status_code == 200  # the owner's usual place
    assert [_attempt(api, "admin", headers=guesser).status_code for _ in range(6)] == [401] * 5 + [423]
    assert _attempt(api, "admin", PASSWORD, headers=stranger).status_code == 423  # locked for everyone else
    assert _attempt(api, "admin", PASSWORD, headers=owner).status_code == 200  # not for the owner
    assert _attempt(api, "admin", headers=owner).status_code == 401  # whose password is still checked
    assert _attempt(api, "admin", PASSWORD, headers=guesser).status_code == 423  # and the lock still holds
    assert db.execute("SELECT locked_until > now() AS held FROM login_lock").fetchone()["held"]
