"""The administration API inside the administrator's scope: a second administrator trying to read,
change or create outside theirs gets 404 (what is outside is not revealed) or 403 (a create or a
move into outside), never a change; school and community administrators as the router documents."""

import pytest
from fastapi import HTTPException
from sqlmodel import Session

from api.auth.models import User
from api.registry.service import inside
from api.registry.session import engine
from api.scopes.access import resolve
from core.scope import LEVELS
from tests.api.test_admin import A, device_body, school_body
from tests.fixtures.app import login


@pytest.fixture
def two_cities(registry):
    """Suizhou and Wuhan, each with a school, a device, a community, a team and users; admins of every kind."""
    registry.area()
    registry.area(county="421321", names=("湖北省", "随州市", "随县"))
    registry.area(city="420100", county="420102", names=("湖北省", "武汉市", "江岸区"))
    s = {"zengdu": registry.school(county="421303"), "zengdu2": registry.school(county="421303"),
         "suixian": registry.school(county="421321"), "wuhan": registry.school(county="420102", city="420100")}
    d = {k: registry.device(code, device_id=f"D-{k}") for k, code in s.items()}
    registry.community(s["zengdu"], [s["suixian"]], code="C-SZ")
    registry.community(s["wuhan"], code="C-WH")
    for team, (level, code) in {"T-WH": ("city", "420100"), "T-SZ": ("county", "421303")}.items():
        registry.conn.execute("INSERT INTO ops_team (name, scope_level, scope_code) VALUES (%s, %s, %s)",
                              (team, level, code))
    registry.user("suizhou-admin", "city", "421300", role="admin")
    registry.user("wuhan-admin", "city", "420100", role="admin")
    registry.user("zengdu-admin", "county", "421303", role="admin")
    registry.user("school-admin", "school", s["zengdu"], role="admin")
    registry.user("community-admin", "community", "C-SZ", role="admin")
    registry.user("wuhan-viewer", "city", "420100", role="viewer")
    registry.user("suixian-viewer", "county", "421321", role="viewer")
    registry.user("zengdu-viewer", "school", s["zengdu"], role="viewer")
    return s, d


def _team(db, name: str) -> int:
    return db.execute("SELECT id FROM ops_team WHERE name = %s", (name,)).fetchone()["id"]


def test_nothing_of_another_city_can_be_read_or_changed(api, two_cities, db):
    s, d = two_cities
    suizhou = login(api, "suizhou-admin")
    wuhan_team = _team(db, "T-WH")
    before = db.execute("SELECT count(*) AS n, max(id) AS last FROM audit_log").fetchone()
    for method, path, body in (
            ("PATCH", "/users/wuhan-viewer", {"display_name": "x"}),
            ("PATCH", "/users/wuhan-admin", {"disabled": True}),
            ("POST", "/users/wuhan-viewer/password", {}),
            ("PATCH", f"/schools/{s['wuhan']}", {"name": "x"}),
            ("PATCH", f"/devices/{d['wuhan']}", {"room": "x"}),
            ("POST", f"/devices/{d['wuhan']}/retire", {"reason": "x"}),
            ("POST", f"/devices/{d['wuhan']}/return", None),
            ("PATCH", "/communities/C-WH", {"name": "x"}),
            ("PUT", f"/communities/C-WH/members/{s['zengdu']}", {"role": "member"}),
            ("DELETE", f"/communities/C-WH/members/{s['wuhan']}", None),
            ("PATCH", f"/ops-teams/{wuhan_team}", {"name": "x"})):
        r = api.request(method, A + path, json=body, headers=suizhou)
        assert r.status_code == 404 and "in your scope" in r.json()["detail"], (method, path, r.text)
    assert db.execute("SELECT count(*) AS n FROM audit_log WHERE action LIKE 'admin.%'").fetchone()["n"] == 0
    assert db.execute("SELECT count(*) AS n, max(id) AS last FROM audit_log").fetchone()["n"] == before["n"]
    # and the lists leave it out
    seen = {path: {i.get("username") or i.get("code") or i.get("id") or i.get("name")
                   for i in api.get(A + path, headers=suizhou).json()["items"]}
            for path in ("/users", "/schools", "/devices", "/communities", "/ops-teams")}
    assert "wuhan-viewer" not in seen["/users"] and "wuhan-admin" not in seen["/users"]
    assert seen["/users"] >= {"suizhou-admin", "zengdu-admin", "school-admin", "community-admin", "suixian-viewer"}
    assert s["wuhan"] not in seen["/schools"] and d["wuhan"] not in seen["/devices"]
    assert seen["/communities"] == {"C-SZ"} and seen["/ops-teams"] == {_team(db, "T-SZ")}


def test_nothing_can_be_created_or_moved_into_another_city(api, two_cities, db):
    s, d = two_cities
    suizhou = login(api, "suizhou-admin")
    for method, path, body in (
            ("POST", "/users", {"username": "spy", "display_name": "x", "role": "admin", "scope_level": "city",
                                "scope_code": "420100"}),
            ("POST", "/users", {"username": "spy", "display_name": "x", "role": "admin",
                                "scope_level": "province", "scope_code": "420000"}),
            ("PATCH", "/users/suixian-viewer", {"scope_level": "city", "scope_code": "420100"}),
            ("POST", "/schools", school_body(county="420102")),
            ("PATCH", f"/schools/{s['zengdu2']}", {"county_code": "420102"}),
            ("POST", "/devices", device_body(s["wuhan"])),
            ("PATCH", f"/devices/{d['zengdu']}", {"school_code": s["wuhan"]}),
            ("POST", "/communities", {"code": "C-X", "name": "x", "kind": "merged", "lead_school_code": s["wuhan"]}),
            ("PATCH", "/communities/C-SZ", {"lead_school_code": s["wuhan"]}),
            ("PUT", f"/communities/C-SZ/members/{s['wuhan']}", {"role": "member"}),
            ("POST", "/ops-teams", {"name": "x", "scope_level": "county", "scope_code": "420102"}),
            ("PATCH", f"/ops-teams/{_team(db, 'T-SZ')}", {"scope_level": "city", "scope_code": "420100"}),
            # a scope that does not exist at all is answered the same: its absence is not revealed either
            ("POST", "/schools", school_body(county="999999")),
            ("POST", "/devices", device_body("9999999999"))):
        r = api.request(method, A + path, json=body, headers=suizhou)
        assert r.status_code == 403 and "outside your scope" in r.json()["detail"], (method, path, r.text)
    assert db.execute("SELECT count(*) AS n FROM audit_log WHERE action LIKE 'admin.%'").fetchone()["n"] == 0
    assert db.execute("SELECT count(*) AS n FROM app_user WHERE username = 'spy'").fetchone()["n"] == 0
    assert db.execute("SELECT county_code FROM school WHERE code = %s", (s["zengdu2"],)).fetchone()["county_code"] \
        == "421303"


def test_a_county_administrator_stays_in_the_county(api, two_cities, db):
    s, d = two_cities
    zengdu = login(api, "zengdu-admin")
    r = api.post(A + "/users", json={"username": "boss", "display_name": "x", "role": "viewer",
                                     "scope_level": "city", "scope_code": "421300"}, headers=zengdu)
    assert r.status_code == 403
    assert api.patch(A + "/users/zengdu-viewer", json={"scope_level": "city", "scope_code": "421300"},
                     headers=zengdu).status_code == 403
    assert api.patch(A + "/users/suixian-viewer", json={"display_name": "x"}, headers=zengdu).status_code == 404
    assert api.patch(A + "/users/suizhou-admin", json={"disabled": True}, headers=zengdu).status_code == 404
    assert api.patch(f"{A}/schools/{s['zengdu2']}", json={"county_code": "421321"}, headers=zengdu).status_code == 403
    assert api.patch(f"{A}/schools/{s['suixian']}", json={"name": "x"}, headers=zengdu).status_code == 404
    users = {u["username"] for u in api.get(A + "/users", headers=zengdu).json()["items"]}
    assert users == {"zengdu-admin", "school-admin", "zengdu-viewer", "community-admin"}  # C-SZ is led from Zengdu
    ok = api.post(A + "/users", json={"username": "teacher", "display_name": "x", "role": "viewer",
                                      "scope_level": "school", "scope_code": s["zengdu2"]}, headers=zengdu)
    assert ok.status_code == 201
    # the community led from Zengdu is theirs; its member in Suixian is seen in it, not as their school
    assert {c["code"] for c in api.get(A + "/communities", headers=zengdu).json()["items"]} == {"C-SZ"}
    assert api.put(f"{A}/communities/C-SZ/members/{s['zengdu2']}", json={"role": "member"},
                   headers=zengdu).status_code == 200


def test_history_shows_only_what_lies_inside(api, two_cities):
    s, d = two_cities
    suizhou, wuhan = login(api, "suizhou-admin"), login(api, "wuhan-admin")
    assert api.patch(f"{A}/devices/{d['zengdu']}", json={"room": "202"}, headers=suizhou).status_code == 200
    assert api.patch(f"{A}/devices/{d['wuhan']}", json={"room": "303"}, headers=wuhan).status_code == 200
    mine = api.get(A + "/history", headers=suizhou).json()
    assert [(h["entity"], h["key"]) for h in mine["items"]] == [("device", d["zengdu"])]
    theirs = api.get(A + "/history", params={"entity": "device", "key": d["zengdu"]}, headers=wuhan).json()
    assert theirs == {"items": [], "total": 0}


def test_a_school_administrator_keeps_to_the_school(api, two_cities, db):
    s, d = two_cities
    school = login(api, "school-admin")
    assert [x["code"] for x in api.get(A + "/schools", headers=school).json()["items"]] == [s["zengdu"]]
    assert api.post(A + "/schools", json=school_body(), headers=school).status_code == 403
    assert api.patch(f"{A}/schools/{s['zengdu']}", json={"students": 600}, headers=school).status_code == 200
    assert api.patch(f"{A}/schools/{s['zengdu']}", json={"county_code": "421321"}, headers=school).status_code == 403
    assert api.post(A + "/devices", json=device_body(s["zengdu"]), headers=school).status_code == 201
    assert api.post(A + "/devices", json=device_body(s["zengdu2"], "B-ELSE"), headers=school).status_code == 403
    assert api.patch(f"{A}/devices/{d['zengdu']}", json={"school_code": s["zengdu2"]},
                     headers=school).status_code == 403
    assert api.patch(f"{A}/devices/{d['zengdu2']}", json={"room": "x"}, headers=school).status_code == 404
    assert api.get(A + "/communities", headers=school).json()["total"] == 0
    assert api.post(A + "/communities", json={"code": "C-S", "name": "x", "kind": "merged",
                                              "lead_school_code": s["zengdu"]}, headers=school).status_code == 403
    assert {u["username"] for u in api.get(A + "/users", headers=school).json()["items"]} == {
        "school-admin", "zengdu-viewer"}
    assert api.post(A + "/users", json={"username": "teacher", "display_name": "x", "role": "viewer",
                                        "scope_level": "school", "scope_code": s["zengdu"]},
                    headers=school).status_code == 201


def test_a_community_administrator_manages_its_members(api, two_cities):
    s, d = two_cities
    community = login(api, "community-admin")
    schools = {x["code"] for x in api.get(A + "/schools", headers=community).json()["items"]}
    assert schools == {s["zengdu"], s["suixian"]}
    assert {x["id"] for x in api.get(A + "/devices", headers=community).json()["items"]} == {d["zengdu"], d["suixian"]}
    assert api.patch("/api/v1/admin/communities/C-SZ", json={"name": "随州教联体"}, headers=community).status_code == 200
    assert api.put(f"{A}/communities/C-SZ/members/{s['zengdu2']}", json={"role": "member"},
                   headers=community).status_code == 403  # not one of theirs: a county or city administrator adds it
    led = api.put(f"{A}/communities/C-SZ/members/{s['suixian']}", json={"role": "lead"}, headers=community)
    assert led.status_code == 200 and led.json()["lead_school_code"] == s["suixian"]
    assert api.post(A + "/schools", json=school_body(), headers=community).status_code == 403
    assert api.post(A + "/users", json={"username": "c-user", "display_name": "x", "role": "viewer",
                                        "scope_level": "community", "scope_code": "C-SZ"},
                    headers=community).status_code == 201
    assert api.patch(f"{A}/devices/{d['zengdu2']}", json={"room": "x"}, headers=community).status_code == 404


def test_the_registry_scope_is_the_access_rule(db, two_cities):
    """`scope_codes` (set-based, for the registry) and `resolve` (one scope at a time, for every route)
    agree on every scope for administrators of every level."""
    s, _ = two_cities
    scopes = [(level, r["code"]) for level in LEVELS for r in db.execute(f"SELECT code FROM {level}")]  # noqa: S608
    admins = [("province", "420000"), ("city", "421300"), ("county", "421303"), ("school", s["zengdu"]),
              ("community", "C-SZ"), ("community", "C-WH")]
    with Session(engine()) as session:
        for level, code in admins:
            admin = User(username="a", display_name="a", role="admin", scope_level=level, scope_code=code)
            for target in scopes:
                try:
                    resolve(db, admin, *target)
                    expected = True
                except HTTPException:
                    expected = False
                assert inside(session, admin, *target) is expected, (level, code, target)
