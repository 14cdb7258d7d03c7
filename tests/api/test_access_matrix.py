"""Every API route × every role and kind of scope, generated from the app's router table.

Outside the user's scope every route answers 404 (or 403 for a role that may not act
at all) — never data, never a 500 — and without a token 401. A new route fails this
test until its path parameters are known here, so no route ships without scope checks.
"""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.routing import APIRoute

from api.main import ROUTERS
from tests.fixtures.app import login

ROLES = ("admin", "manager", "operations", "viewer")
# Routes that name no scope: what they return is not bounded by one (or is bounded inside, by the body).
SCOPE_FREE = {
    ("POST", "/api/v1/auth/token"): "the login itself",
    ("GET", "/api/v1/auth/me"): "the caller's own user",
    ("POST", "/api/v1/auth/logout"): "the caller's own token",
    ("POST", "/api/v1/auth/password"): "the caller's own password",
    ("GET", "/api/v1/figures"): "the catalogue of figure definitions",
    ("GET", "/api/v1/targets-catalogue"): "the keys a target can be set on (definitions, no data)",
    ("GET", "/api/v1/patrol/rules"): "province-wide rule defaults (configuration, no data)",
    ("GET", "/api/v1/auth/locks"): "admin-only, filtered to the caller's scope inside",
    ("PATCH", "/api/v1/patrol/rules/{rule_id}"): "admin-only configuration",
    ("POST", "/api/v1/lessons/match"): "counts bounded by the caller's scope inside",
    ("POST", "/api/v1/lessons/timetable"): "each row's devices checked against the caller's scope",
    ("POST", "/api/v1/lessons/timetable/upload"): "each row's devices checked against the caller's scope",
    ("POST", "/api/v1/ingest/{channel}"): "a vendor platform's key, not a user's token: bounded by the vendor's devices",
    ("POST", "/api/v1/auth/display"): "a display link's secret, not a user's token: the token bought reads the link's scope",
    ("GET", "/api/v1/snapshots/{snapshot_id}/image"): "a still's signed link, made for a user who could see it",
}
# Routes whose credential is a signed link, not a token (tests/api/test_inspection.py tries forged and expired ones).
SIGNED = {("GET", "/api/v1/snapshots/{snapshot_id}/image")}
# Routes only an administrator may use: any other role is refused (403) before the scope is looked at.
# The registry's administration (/api/v1/admin/…) is all of them; its collections (no path parameter)
# are bounded inside by the caller's scope, their escapes tested in tests/api/test_admin_scope.py.
ADMIN_ONLY = {("DELETE", "/api/v1/auth/locks/{username}")}
ADMINISTRATION = "/api/v1/admin/"
LATER = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
BODIES = {
    "/api/v1/alerts/{alert_id}/work-order": {},
    "/api/v1/devices/{device_id}/commands": {"name": "reboot"},
    "/api/v1/scopes/{level}/{code}/commands": {"kind": "board", "name": "reboot"},
    "/api/v1/scopes/{level}/{code}/maintenance": {"starts_at": datetime.now(UTC).isoformat(), "ends_at": LATER,
                                                   "reason": "维护窗口"},
    "/api/v1/scopes/{level}/{code}/patrol/rules/{rule_id}": {"offline_after_s": 300},
    "/api/v1/scopes/{level}/{code}/silences": {"ends_at": LATER, "reason": "静默原因"},
    "/api/v1/scopes/{level}/{code}/targets": {"figure": "online_rate", "value": 0.9, "deadline": "2030-01-01"},
    "/api/v1/work-orders/{order_id}": {"status": "in_progress"},
    "/api/v1/work-orders/{order_id}/take": None,
    "/api/v1/work-orders/{order_id}/notes": {"text": "现场备注"},
    "/api/v1/work-orders/{order_id}/photos": None,  # the body is a picture, not JSON; refused before it is read
    "/api/v1/admin/users/{username}": {"display_name": "x"},
    "/api/v1/admin/users/{username}/password": {},
    "/api/v1/admin/schools/{school_code}": {"name": "x"},
    "/api/v1/admin/devices/{device_id}": {"room": "x"},
    "/api/v1/admin/devices/{device_id}/retire": {"reason": "x"},
    "/api/v1/admin/devices/{device_id}/return": None,
    "/api/v1/admin/communities/{community_code}": {"name": "x"},
    "/api/v1/admin/communities/{community_code}/members/{school_code}": {"role": "member"},
    "/api/v1/admin/ops-teams/{team_id}": {"name": "x"},
    "/api/v1/admin/display-links/{link_id}/revoke": None,
    "/api/v1/inspection/classrooms/{device_id}/inspections": {"teacher_present": True, "students_present": True,
                                                              "picture_ok": True, "sound_ok": True, "board_in_use": True},
}


def routes() -> list[tuple[str, str]]:
    """(method, path) of every API route."""
    found = []
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            found += [(method, route.path_format) for method in sorted(route.methods)]
    return found


@pytest.fixture
def foreign(registry):
    """Users of 随州 (every role; a school user; a community user) and objects that belong to 武汉 only."""
    registry.area()
    registry.area(city="420100", county="420102", names=("湖北省", "武汉市", "江岸区"))
    mine = registry.school()
    registry.device(mine)
    school = registry.school(county="420102", city="420100")
    device = registry.device(school)
    registry.community(school, code="C42010201", name="武汉教联体")
    registry.community(mine, code="C42130399", name="随州教联体")
    command = registry.command(device, command_id="a" * 32, issued_by="x")
    alert = registry.alert(device, school=school, severity="major", summary="offline")
    order = registry.work_order(school, device, alert=alert, title="t", created_by="x")
    target = registry.target("city", "420100", value=0.9, deadline="2030-01-01", set_by="x")
    round_id = registry.patrol_round("city", "420100")
    for role in ROLES:
        registry.user(f"city-{role}", "city", "421300", role=role)
    registry.user("school-manager", "school", mine)
    registry.user("community-manager", "community", "C42130399")
    registry.user("wuhan-viewer", "city", "420100", role="viewer")
    team = registry.conn.execute("INSERT INTO ops_team (name, scope_level, scope_code) VALUES ('武汉运维', 'city', "
                                 "'420100') RETURNING id").fetchone()["id"]
    link = registry.conn.execute("INSERT INTO display_link (label, scope_level, scope_code, pages, rotate_s, secret_hash, "
                                 "created_by) VALUES ('武汉大屏', 'city', '420100', '[\"/\"]', 60, repeat('a', 64), 'x') "
                                 "RETURNING id").fetchone()["id"]
    return {"{username}": "wuhan-viewer", "{school_code}": school, "{community_code}": "C42010201",
            "{team_id}": str(team), "{link_id}": str(link), "{level}": "city", "{code}": "420100", "{device_id}": device, "{command_id}": command,
            "{alert_id}": str(alert), "{order_id}": str(order), "{target_id}": str(target),
            "{round_id}": str(round_id), "{rule_id}": "device_offline", "{channel}": "telemetry", "communities/{code}": "C42010201",
            "{photo_id}": "1", "{snapshot_id}": "1"}


def _path(path: str, values: dict) -> str:
    if path.startswith("/api/v1/communities/{code}"):
        return path.replace("{code}", values["communities/{code}"])
    for key, value in values.items():
        if key.startswith("{"):
            path = path.replace(key, value)
    assert "{" not in path, f"add the path parameters of {path} to the access matrix"
    return path


def test_every_route_needs_a_token(api, foreign):
    for method, path in routes():
        if (method, path) == ("POST", "/api/v1/auth/token") or (method, path) in SIGNED:
            continue
        r = api.request(method, _path(path, foreign), json=BODIES.get(path))
        assert r.status_code == 401, f"{method} {path} answered {r.status_code} without a token"


@pytest.mark.parametrize("username", [f"city-{r}" for r in ROLES] + ["school-manager", "community-manager"])
def test_nothing_outside_the_scope_is_reachable(api, foreign, username):
    headers = login(api, username)
    checked = 0
    for method, path in routes():
        if (method, path) in SCOPE_FREE or (path.startswith(ADMINISTRATION) and "{" not in path):
            continue
        if method in ("POST", "PUT", "PATCH") and "{" in path and path not in BODIES and not path.endswith(
                ("/ack", "/patrol/rounds")):
            pytest.fail(f"add a request body for {method} {path} to the access matrix")
        r = api.request(method, _path(path, foreign), json=BODIES.get(path), headers=headers)
        allowed = {404} if username.startswith(("city-admin", "city-manager")) else {403, 404}
        if ((method, path) in ADMIN_ONLY or path.startswith(ADMINISTRATION)) and not username.startswith("city-admin"):
            allowed = {403}
        assert r.status_code in allowed, f"{username}: {method} {path} answered {r.status_code}: {r.text[:200]}"
        checked += 1
    assert checked >= 40
