"""Display links (wall screens): only administrators issue them, inside their scope, audited; the token a
link's secret buys reads its scope and nothing else, writes nothing on any route the API has, and stops
working the moment the link is revoked."""

import hashlib
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from api.auth import display
from api.main import create_app
from tests.fixtures.app import login

LINKS = "/api/v1/admin/display-links"
EXCHANGE = "/api/v1/auth/display"
DOCUMENT = create_app().openapi()
WRITES = ("post", "put", "patch", "delete")
# Write routes that take no bearer token: they authenticate otherwise (or are the logins themselves), so a
# display token confers nothing there. Any other write route must answer a display token 403.
NOT_BEARER = {("post", "/api/v1/auth/token"), ("post", EXCHANGE), ("post", "/api/v1/ingest/{channel}")}


@pytest.fixture
def area(registry):
    """Suizhou (Zengdu, Suixian) and Wuhan, a school and a board in each county, admins and a viewer."""
    registry.area()
    registry.area(county="421321", names=("湖北省", "随州市", "随县"))
    registry.area(city="420100", county="420102", names=("湖北省", "武汉市", "江岸区"))
    schools = {"zengdu": registry.school(county="421303"), "suixian": registry.school(county="421321"),
               "wuhan": registry.school(county="420102", city="420100")}
    devices = {name: registry.device(code) for name, code in schools.items()}
    registry.user("suizhou-admin", "city", "421300", role="admin")
    registry.user("wuhan-admin", "city", "420100", role="admin")
    registry.user("suizhou-viewer", "city", "421300", role="viewer")
    return {"schools": schools, "devices": devices}


def issue(api, admin: dict, **fields) -> dict:
    body = {"label": "指挥中心大屏", "scope_level": "county", "scope_code": "421303", "pages": ["/", "/equity"],
            "rotate_s": 30, **fields}
    r = api.post(LINKS, json=body, headers=admin)
    assert r.status_code == 201, r.text
    return r.json()


def exchange(api, key: str | bytes | None):
    return api.post(EXCHANGE, headers={} if key is None else {"X-Display-Key": key})


def bearer(answer) -> dict:
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def test_only_administrators_issue_links_inside_their_scope_and_every_issue_and_revoke_is_audited(api, area, db):
    admin = login(api, "suizhou-admin")
    link = issue(api, admin)
    assert link["key"].startswith("dl_") and link["wall_path"] == f"/wall#key={link['key']}"
    assert link["created_by"] == "suizhou-admin" and link["revoked_at"] is None and link["pages"] == ["/", "/equity"]
    stored = db.execute("SELECT * FROM display_link WHERE id = %s", (link["id"],)).fetchone()
    assert stored["secret_hash"] == hashlib.sha256(link["key"].encode()).hexdigest()  # the secret is kept nowhere
    listed = api.get(LINKS, headers=admin).json()
    assert listed["total"] == 1 and "key" not in listed["items"][0] and "secret_hash" not in listed["items"][0]

    viewer = login(api, "suizhou-viewer")
    r = api.post(LINKS, json={"label": "x", "scope_level": "county", "scope_code": "421303", "pages": ["/"]},
                 headers=viewer)
    assert r.status_code == 403 and "may not manage display links" in r.json()["detail"]
    assert api.get(LINKS, headers=viewer).status_code == 403
    assert api.post(f"{LINKS}/{link['id']}/revoke", headers=viewer).status_code == 403

    wuhan = login(api, "wuhan-admin")
    r = api.post(LINKS, json={"label": "x", "scope_level": "county", "scope_code": "421303", "pages": ["/"]},
                 headers=wuhan)
    assert r.status_code == 403 and "outside your scope" in r.json()["detail"]
    for level, code in (("province", "420000"), ("city", "420100"), ("county", "999999")):
        assert api.post(LINKS, json={"label": "x", "scope_level": level, "scope_code": code, "pages": ["/"]},
                        headers=admin).status_code == 403, (level, code)  # above the admin, or nowhere
    assert api.get(LINKS, headers=wuhan).json() == {"items": [], "total": 0}
    assert api.post(f"{LINKS}/{link['id']}/revoke", headers=wuhan).status_code == 404

    revoked = api.post(f"{LINKS}/{link['id']}/revoke", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_by"] == "suizhou-admin"
    again = api.post(f"{LINKS}/{link['id']}/revoke", headers=admin)
    assert again.status_code == 409 and "revoked already" in again.json()["detail"]
    assert api.post(f"{LINKS}/99999/revoke", headers=admin).status_code == 404
    entries = db.execute("SELECT username, action, target, detail FROM audit_log WHERE action LIKE "
                         "'admin.display_link.%%' ORDER BY id").fetchall()
    assert [(e["username"], e["action"], e["target"]) for e in entries] == [
        ("suizhou-admin", "admin.display_link.issue", str(link["id"])),
        ("suizhou-admin", "admin.display_link.revoke", str(link["id"]))]
    assert entries[0]["detail"]["after"]["scope_code"] == "421303" and entries[1]["detail"]["before"]["revoked_at"] is None
    assert link["key"] not in str(entries) and stored["secret_hash"] not in str(entries)
    assert api.get(LINKS, params={"revoked": "true"}, headers=admin).json()["total"] == 1
    assert api.get(LINKS, params={"revoked": "false"}, headers=admin).json()["total"] == 0


def test_a_link_is_checked_at_the_door_and_its_limits_reach_the_database(api, area, db):
    admin = login(api, "suizhou-admin")
    base = {"label": "大屏", "scope_level": "county", "scope_code": "421303", "pages": ["/"]}
    refused = {"no pages": {"pages": []}, "a page twice": {"pages": ["/", "/"]},
               "thirteen pages": {"pages": [f"/p{i}" for i in range(13)]}, "not a path": {"pages": ["equity"]},
               "too quick": {"rotate_s": 4}, "too slow": {"rotate_s": 3601}, "text for seconds": {"rotate_s": "30"},
               "no label": {"label": ""}, "a long label": {"label": "屏" * 101}, "NUL": {"label": "a\x00b"},
               "a bad level": {"scope_level": "planet"}, "a bad code": {"scope_code": "42 13"},
               "a secret of one's own": {"key": "dl_mine"}}
    for why, change in refused.items():
        r = api.post(LINKS, json={**base, **change}, headers=admin)
        assert r.status_code == 422 and r.json()["errors"], (why, r.text)
    for fields in ({"rotate_s": 5, "pages": [f"/p{i}" for i in range(12)], "label": "屏" * 100},
                   {"rotate_s": 3600}):
        link = issue(api, admin, **fields)
        row = db.execute("SELECT rotate_s, pages, label FROM display_link WHERE id = %s", (link["id"],)).fetchone()
        assert (row["rotate_s"], row["pages"], row["label"]) == (link["rotate_s"], link["pages"], link["label"])


def test_a_display_token_reads_its_own_scope_and_no_other(api, area):
    link = issue(api, login(api, "suizhou-admin"))
    answer = exchange(api, link["key"])
    token = bearer(answer)
    given = answer.json()
    assert given["expires_in"] == display.TOKEN_TTL_S and given["user"]["role"] == "display"
    assert given["link"] == {"id": link["id"], "label": "指挥中心大屏", "scope_level": "county", "scope_code": "421303",
                             "scope_name": "曾都区", "pages": ["/", "/equity"], "rotate_s": 30}
    me = api.get("/api/v1/auth/me", headers=token).json()
    assert (me["role"], me["scope_level"], me["scope_code"]) == ("display", "county", "421303")
    assert api.get("/api/v1/scopes/county/421303/overview", headers=token).status_code == 200
    school, board = area["schools"]["zengdu"], area["devices"]["zengdu"]
    assert api.get(f"/api/v1/scopes/school/{school}/devices", headers=token).status_code == 200
    assert api.get(f"/api/v1/devices/{board}", headers=token).status_code == 200
    for outside in ("/api/v1/scopes/county/421321/overview", "/api/v1/scopes/city/421300/overview",
                    "/api/v1/scopes/province/420000/figures", "/api/v1/scopes/city/420100/alerts",
                    f"/api/v1/scopes/school/{area['schools']['wuhan']}/devices",
                    f"/api/v1/devices/{area['devices']['suixian']}"):
        r = api.get(outside, headers=token)
        assert r.status_code == 404, (outside, r.status_code, r.text)
    admin_reads = [path for path, ops in DOCUMENT["paths"].items() if "get" in ops and
                   (path.startswith("/api/v1/admin/") or path == "/api/v1/auth/locks") and "{" not in path]
    assert len(admin_reads) >= 8
    for path in admin_reads:
        r = api.get(path, headers=token)
        assert r.status_code == 403 and "role display may not" in r.json()["detail"], (path, r.text)


def _path_value(parameter: dict) -> object:
    schema = parameter.get("schema", {})
    for source in (parameter.get("examples"), schema.get("examples"), schema.get("enum")):
        if source:
            return next(iter(source.values()))["value"] if isinstance(source, dict) else source[0]
    return 1 if schema.get("type") == "integer" else "421303"


def _concrete(path: str, operation: dict) -> str:
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            path = path.replace("{" + parameter["name"] + "}", str(_path_value(parameter)))
    return path


def test_a_display_token_writes_nothing_on_any_route(api, area, db):
    token = bearer(exchange(api, issue(api, login(api, "suizhou-admin"))["key"]))
    audited = db.execute("SELECT count(*) AS n FROM audit_log").fetchone()["n"]
    writes = [(method, path, op) for path, ops in DOCUMENT["paths"].items() for method, op in ops.items()
              if method in WRITES]
    assert len(writes) >= 30
    unauthenticated = set()
    for method, path, op in writes:
        concrete = _concrete(path, op)
        json_body = "application/json" in op.get("requestBody", {}).get("content", {})
        r = api.request(method.upper(), concrete, headers=token, json={} if json_body else None)
        assert r.status_code < 500 and not r.is_success, (method, path, r.status_code, r.text)
        if {"OAuth2PasswordBearer": []} in op.get("security", []):
            assert r.status_code == 403, (method, path, r.status_code, r.text)
            assert r.json()["detail"] == f"a display link only reads: {method.upper()} is refused to its token"
        else:
            assert r.status_code in (401, 422), (method, path, r.status_code, r.text)
            unauthenticated.add((method, path))
    assert unauthenticated == NOT_BEARER  # a new write route without a bearer token must be looked at here
    assert db.execute("SELECT count(*) AS n FROM audit_log").fetchone()["n"] == audited


def test_revoking_a_link_stops_its_secret_and_every_token_at_once(api, area):
    admin = login(api, "suizhou-admin")
    link, other = issue(api, admin), issue(api, admin, label="会议室", scope_level="county", scope_code="421321")
    first, second = bearer(exchange(api, link["key"])), bearer(exchange(api, link["key"]))
    elsewhere = bearer(exchange(api, other["key"]))
    for token in (first, second):
        assert api.get("/api/v1/scopes/county/421303/overview", headers=token).status_code == 200
    assert api.post(f"{LINKS}/{link['id']}/revoke", headers=admin).status_code == 200
    for token in (first, second):
        r = api.get("/api/v1/scopes/county/421303/overview", headers=token)
        assert r.status_code == 401 and r.json()["detail"] == display.REVOKED
        assert api.get("/api/v1/auth/me", headers=token).status_code == 401
        assert api.post(f"{LINKS}/{other['id']}/revoke", headers=token).status_code == 401
    r = exchange(api, link["key"])
    assert r.status_code == 401 and r.json()["detail"] == display.REVOKED
    assert api.get("/api/v1/scopes/county/421321/overview", headers=elsewhere).status_code == 200  # its own link


def test_missing_unknown_garbled_or_forged_keys_and_tokens_answer_401(api, area, db):
    link = issue(api, login(api, "suizhou-admin"))
    for key in (None, "", "dl_unknown", link["key"][:-1], link["key"] + "x", "%%%%", " " * 10, "x" * 256,
                "x" * 5000, "显示".encode(), b"\xff\xfe"):
        r = exchange(api, key)
        assert r.status_code == 401, (key, r.status_code, r.text)
        assert r.json()["detail"] == display.UNKNOWN
    used = db.execute("SELECT last_used_at FROM display_link WHERE id = %s", (link["id"],)).fetchone()
    assert used["last_used_at"] is None  # no refused attempt counts as a use

    now = datetime.now(UTC)
    claims = {"sub": f"display:{link['id']}", "link": link["id"], "iat": now, "exp": now + timedelta(minutes=5),
              "jti": "x"}
    forged = {"a wrong key": jwt.encode(claims, "k" * 48, algorithm="HS256", headers={"kid": "display"}),
              "the users' key": jwt.encode(claims, _users_key(), algorithm="HS256", headers={"kid": "display"}),
              "expired": jwt.encode({**claims, "exp": now - timedelta(seconds=1)}, display._signing_key(),
                                    algorithm="HS256", headers={"kid": "display"}),
              "no such link": jwt.encode({**claims, "link": 99999}, display._signing_key(), algorithm="HS256",
                                         headers={"kid": "display"}),
              "a text link": jwt.encode({**claims, "link": str(link["id"])}, display._signing_key(), algorithm="HS256",
                                        headers={"kid": "display"}),
              "no algorithm": jwt.encode(claims, None, algorithm="none", headers={"kid": "display"}),
              "not a token": "kid.display.x"}
    for why, token in forged.items():
        r = api.get("/api/v1/scopes/county/421303/overview", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, (why, r.status_code, r.text)
    display_token = exchange(api, link["key"]).json()["access_token"]
    as_user = jwt.decode(display_token, options={"verify_signature": False})
    user_style = jwt.encode(as_user, _users_key(), algorithm="HS256")  # the claims, as a user's token
    assert api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {user_style}"}).status_code == 401


def _users_key() -> str:
    from api.settings import api_settings

    return api_settings().signing_key()
