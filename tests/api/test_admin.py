"""The registry's administration API: every endpoint through the real database, values at and past
what the columns hold, the audit log's before/after, the history, and the models against the schema."""

import io
import json

import pandas
import psycopg
import pytest
from sqlalchemy import (
    CHAR,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    String,
    TypeDecorator,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError

from api.registry.models import TABLE_MODELS
from api.registry.session import get_session
from core.credentials import device_password
from core.settings import platform_settings
from tests.fixtures.app import login

A = "/api/v1/admin"
INT_MAX = 2**31 - 1
SECRET = "provisioning-secret-for-admin-tests"


@pytest.fixture
def area(registry):
    """Suizhou (Zengdu, Suixian) and Wuhan (Jiang'an), a school in each county, admins and a viewer."""
    registry.area()
    registry.area(county="421321", names=("湖北省", "随州市", "随县"))
    registry.area(city="420100", county="420102", names=("湖北省", "武汉市", "江岸区"))
    schools = {"zengdu": registry.school(county="421303"), "suixian": registry.school(county="421321"),
               "wuhan": registry.school(county="420102", city="420100")}
    registry.user("suizhou-admin", "city", "421300", role="admin")
    registry.user("wuhan-admin", "city", "420100", role="admin")
    registry.user("zengdu-admin", "county", "421303", role="admin")
    registry.user("suizhou-viewer", "city", "421300", role="viewer")
    return schools


@pytest.fixture
def device_secret(monkeypatch):
    """A provisioning secret configured for this test."""
    monkeypatch.setenv("COCKPIT_DEVICE_SECRET", SECRET)
    platform_settings.cache_clear()
    yield SECRET
    monkeypatch.delenv("COCKPIT_DEVICE_SECRET")
    platform_settings.cache_clear()


def school_body(code="4213039901", county="421303", **fields) -> dict:
    return {"code": code, "name": "新建学校", "county_code": county, "locale": "rural", "stage": "primary",
            "classes": 6, "students": 120, "teachers": 12, "uplink_mbps": 200, **fields}


def device_body(school: str, device_id="B-NEW-001", **fields) -> dict:
    return {"id": device_id, "kind": "board", "school_code": school, "room": "301", "vendor": "希沃", "model": "X1",
            **fields}


def audits(db, action: str) -> list[dict]:
    return db.execute("SELECT * FROM audit_log WHERE action = %s ORDER BY id", (action,)).fetchall()


def history(db, entity: str, key: str) -> list[dict]:
    return db.execute("SELECT * FROM registry_history WHERE entity = %s AND key = %s ORDER BY id",
                      (entity, key)).fetchall()


# -- the models are the schema ------------------------------------------------------------------------
def _described(sa_type) -> tuple[str, int | None]:
    """What information_schema says of a column of this SQLAlchemy type (text for any string type)."""
    sa_type = sa_type.impl_instance if isinstance(sa_type, TypeDecorator) else sa_type  # SQLModel's AutoString
    for cls, name in ((CHAR, "character"), (String, "text"), (BigInteger, "bigint"), (Integer, "integer"),
                      (Float, "double precision"), (Boolean, "boolean"), (JSONB, "jsonb"), (Date, "date")):
        if isinstance(sa_type, cls):
            return name, sa_type.length if cls is CHAR else None
    assert isinstance(sa_type, DateTime), sa_type
    return ("timestamp with time zone" if sa_type.timezone else "timestamp without time zone"), None


@pytest.mark.parametrize("model", TABLE_MODELS, ids=lambda m: m.__tablename__)
def test_every_table_model_is_the_table_the_migrations_made(db, model):
    table = model.__table__
    rows = db.execute("SELECT column_name, data_type, character_maximum_length, is_nullable FROM "
                      "information_schema.columns WHERE table_schema = 'public' AND table_name = %s",
                      (table.name,)).fetchall()
    real = {r["column_name"]: (r["data_type"], r["character_maximum_length"], r["is_nullable"] == "YES")
            for r in rows}
    mapped = {c.name: (*_described(c.type), c.nullable) for c in table.columns}
    assert mapped == real
    keys = db.execute("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                      "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
                      (table.name,)).fetchall()
    assert {k["attname"] for k in keys} == {c.name for c in table.primary_key.columns}


# -- who may ----------------------------------------------------------------------------------------
def test_only_administrators_administer(api, area):
    viewer = login(api, "suizhou-viewer")
    for method, path, body in (("GET", "/users", None), ("POST", "/schools", school_body()),
                               ("GET", "/devices", None), ("GET", "/history", None),
                               ("PATCH", "/users/suizhou-viewer", {"role": "admin"})):
        r = api.request(method, A + path, json=body, headers=viewer)
        assert r.status_code == 403 and "may not administer the registry" in r.json()["detail"], (path, r.text)
    assert api.get(A + "/users").status_code == 401


# -- users ------------------------------------------------------------------------------------------
def test_users_are_created_changed_disabled_and_recorded(api, area, db):
    admin = login(api, "suizhou-admin")
    r = api.post(A + "/users", json={"username": "suixian", "display_name": "随县教育局", "role": "manager",
                                     "scope_level": "county", "scope_code": "421321"}, headers=admin)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["must_change_password"] and len(created["initial_password"]) >= 16
    assert created["created_by"] == "suizhou-admin" and "password_hash" not in created
    chosen = api.post(A + "/users", json={"username": "zengdu2", "display_name": "曾都", "role": "viewer",
                                          "scope_level": "county", "scope_code": "421303",
                                          "password": "Zx9-correct-horse"}, headers=admin)
    assert chosen.status_code == 201 and chosen.json()["initial_password"] is None
    assert api.post(A + "/users", json={"username": "zengdu2", "display_name": "x", "role": "viewer",
                                        "scope_level": "county", "scope_code": "421303"},
                    headers=admin).status_code == 409

    listed = api.get(A + "/users", params={"q": "SUIXIAN"}, headers=admin).json()
    assert listed["total"] == 1 and listed["items"][0]["scope_name"] == "随县"

    r = api.patch(A + "/users/suixian", json={"role": "viewer", "scope_level": "county", "scope_code": "421303"},
                  headers=admin)
    assert r.status_code == 200 and (r.json()["role"], r.json()["scope_code"]) == ("viewer", "421303")
    assert api.patch(A + "/users/suixian", json={"disabled": True}, headers=admin).json()["disabled"] is True
    assert api.patch(A + "/users/suixian", json={"disabled": False}, headers=admin).status_code == 200
    assert [h["change"] for h in history(db, "user", "suixian")] == ["created", "moved", "disabled", "enabled"]
    update = audits(db, "admin.user.update")[0]["detail"]
    assert update["before"]["scope_code"] == "421321" and update["after"]["scope_code"] == "421303"
    assert update["before"]["role"] == "manager" and update["after"]["role"] == "viewer"
    assert audits(db, "admin.user.create")[0]["detail"]["before"] is None


def test_an_administrator_cannot_disable_demote_or_move_themselves(api, area):
    admin = login(api, "suizhou-admin")
    for change in ({"disabled": True}, {"role": "viewer"}, {"scope_level": "county", "scope_code": "421303"}):
        r = api.patch(A + "/users/suizhou-admin", json=change, headers=admin)
        assert r.status_code == 409 and "yourself" in r.json()["detail"], change
    assert api.post(A + "/users/suizhou-admin/password", json={}, headers=admin).status_code == 409
    renamed = api.patch(A + "/users/suizhou-admin", json={"display_name": "随州市管理员"}, headers=admin)
    assert renamed.status_code == 200  # their own name is theirs to change
    assert api.get(A + "/users", headers=admin).status_code == 200  # still an administrator


def test_a_reset_password_is_shown_once_and_must_be_changed(api, area, db):
    admin = login(api, "suizhou-admin")
    generated = api.post(A + "/users/suizhou-viewer/password", json={}, headers=admin)
    assert generated.status_code == 200 and len(generated.json()["password"]) >= 16
    given = api.post(A + "/users/suizhou-viewer/password", json={"password": "Anew-pass-2024x"}, headers=admin)
    assert given.status_code == 200 and given.json() == {"password": None}
    row = db.execute("SELECT must_change_password FROM app_user WHERE username = 'suizhou-viewer'").fetchone()
    assert row["must_change_password"]
    weak = api.post(A + "/users/suizhou-viewer/password", json={"password": "short1"}, headers=admin)
    assert weak.status_code == 422 and "至少" in weak.json()["detail"] and "at least" in weak.json()["detail"]
    every = json.dumps([r["detail"] for r in db.execute("SELECT detail FROM audit_log")])
    assert "argon2" not in every and "Anew-pass-2024x" not in every and "password_hash" not in every


# -- schools ----------------------------------------------------------------------------------------
def test_schools_are_created_listed_and_moved_with_their_history(api, area, db):
    admin = login(api, "suizhou-admin")
    r = api.post(A + "/schools", json=school_body(stage="complete", latitude=31.7, longitude=113.4), headers=admin)
    assert r.status_code == 201, r.text
    assert (r.json()["city_code"], r.json()["province_code"]) == ("421300", "420000")
    assert api.post(A + "/schools", json=school_body(), headers=admin).status_code == 409
    page = api.get(A + "/schools", params={"county": "421303", "limit": 1, "offset": 0}, headers=admin).json()
    assert page["total"] == 2 and len(page["items"]) == 1 and page["items"][0]["county_name"] == "曾都区"

    moved = api.patch(A + "/schools/4213039901", json={"county_code": "421321", "students": 130}, headers=admin)
    assert moved.status_code == 200 and moved.json()["county_code"] == "421321"
    cleared = api.patch(A + "/schools/4213039901", json={"latitude": None}, headers=admin)
    assert cleared.json()["latitude"] is None and cleared.json()["longitude"] == 113.4
    changes = history(db, "school", "4213039901")
    assert [h["change"] for h in changes] == ["created", "moved", "changed"]
    assert changes[1]["before"]["county_code"] == "421303" and changes[1]["after"]["county_code"] == "421321"
    assert changes[1]["changed_by"] == "suizhou-admin" and changes[1]["source"] == "admin"
    audit = audits(db, "admin.school.update")[0]["detail"]
    assert audit["before"]["students"] == 120 and audit["after"]["students"] == 130
    # the county the school left still sees that it left
    rows = api.get(A + "/history", params={"entity": "school", "key": "4213039901"},
                   headers=login(api, "zengdu-admin")).json()
    assert [h["change"] for h in rows["items"]] == ["moved", "created"]  # newest first; the later change is not theirs


def test_a_school_moving_county_takes_the_communities_it_leads_along(api, area, db, registry):
    registry.community(area["zengdu"], [area["suixian"]], code="C-LEAD")
    admin = login(api, "suizhou-admin")
    r = api.patch(A + f"/schools/{area['zengdu']}", json={"county_code": "421321"}, headers=admin)
    assert r.status_code == 200, r.text
    assert db.execute("SELECT county_code FROM community WHERE code = 'C-LEAD'").fetchone()["county_code"] == "421321"
    assert [h["change"] for h in history(db, "community", "C-LEAD")] == ["moved"]


@pytest.mark.parametrize("field, value, ok", [
    ("classes", INT_MAX, True), ("classes", INT_MAX + 1, False), ("students", -1, False),
    ("teachers", "5", False), ("uplink_mbps", 0, False), ("classes", 1.5, False), ("classes", True, False),
    ("code", "42130399011", False), ("code", "421303990", False), ("code", "42130399a1", False),
    ("name", "学" * 100, True), ("name", "学" * 10_000, False), ("name", "a\x00b", False), ("name", "", False),
    ("locale", "suburb", False), ("stage", "complete", True), ("latitude", 90.5, False),
    ("longitude", -180.0, True), ("county_code", "x" * 33, False), ("county_code", "a\x00", False),
])
def test_school_values_at_and_past_the_columns(api, area, db, field, value, ok):
    r = api.post(A + "/schools", json=school_body(**{field: value}), headers=login(api, "suizhou-admin"))
    assert r.status_code == (201 if ok else 422), r.text
    if ok:
        stored = db.execute(f"SELECT {field} FROM school WHERE code = '4213039901'").fetchone()  # noqa: S608
        assert stored[field] == value
    else:
        assert r.json()["errors"][0]["loc"][-1] == field


def test_an_update_refuses_null_where_the_column_needs_a_value(api, area):
    admin = login(api, "suizhou-admin")
    for field in ("name", "classes", "county_code", "locale"):
        r = api.patch(f"{A}/schools/{area['zengdu']}", json={field: None}, headers=admin)
        assert r.status_code == 422 and r.json()["errors"][0]["loc"][-1] == field
    r = api.patch(f"{A}/schools/{area['zengdu']}", json={"classes": INT_MAX + 1}, headers=admin)
    assert r.status_code == 422


# -- devices ----------------------------------------------------------------------------------------
def test_a_registered_device_gets_its_broker_account(api, area, db, device_secret):
    admin = login(api, "suizhou-admin")
    r = api.post(A + "/devices", json=device_body(area["zengdu"], installed_on="2024-09-01"), headers=admin)
    assert r.status_code == 201, r.text
    mqtt = r.json()["mqtt"]
    assert mqtt["username"] == "B-NEW-001" and mqtt["password"] == device_password(device_secret, "B-NEW-001")
    assert mqtt["topic_prefix"] == "edu/dev/B-NEW-001/" and mqtt["port"] and mqtt["host"]
    assert r.json()["note"] is None
    assert device_secret not in json.dumps(audits(db, "admin.device.register")[0]["detail"])
    assert mqtt["password"] not in json.dumps([r["detail"] for r in db.execute("SELECT detail FROM audit_log")])
    assert db.execute("SELECT 1 FROM device WHERE id = 'B-NEW-001'").fetchone()
    assert api.post(A + "/devices", json=device_body(area["zengdu"]), headers=admin).status_code == 409

    sheet = api.get(A + "/devices/provisioning.xlsx", params={"school": area["zengdu"]}, headers=admin)
    assert sheet.status_code == 200 and sheet.headers["cache-control"] == "no-store"
    rows = pandas.read_excel(io.BytesIO(sheet.content), dtype=str, engine="openpyxl")
    assert list(rows.columns) == ["设备编号", "设备类型", "学校标识码", "学校名称", "教室", "厂商", "型号", "MQTT用户名",
                                  "MQTT密码", "主题前缀", "服务器"]
    row = rows.set_index("设备编号").loc["B-NEW-001"]
    assert row["MQTT密码"] == mqtt["password"] and row["学校标识码"] == area["zengdu"]
    assert row["服务器"].startswith("mqtt://")
    assert audits(db, "admin.device.provisioning")[0]["detail"]["school"] == area["zengdu"]


def test_without_a_secret_a_device_is_registered_with_a_note(api, area):
    r = api.post(A + "/devices", json=device_body(area["zengdu"]), headers=login(api, "suizhou-admin"))
    assert r.status_code == 201 and r.json()["mqtt"] is None and "COCKPIT_DEVICE_SECRET" in r.json()["note"]


def test_a_device_moves_retires_and_returns_with_its_history(api, area, db, registry):
    admin = login(api, "suizhou-admin")
    device = registry.device(area["zengdu"], device_id="B-OLD-001")
    firing = registry.alert(device, rule="device_offline", state="firing")
    pending = registry.alert(device, rule="flapping", state="pending")
    closed = registry.alert(device, rule="board_overheat", state="resolved")
    other = registry.alert(registry.device(area["zengdu"]), rule="device_offline")

    moved = api.patch(A + "/devices/B-OLD-001", json={"school_code": area["suixian"], "room": "202"}, headers=admin)
    assert moved.status_code == 200 and moved.json()["school_code"] == area["suixian"]
    assert api.patch(A + "/devices/B-OLD-001", json={"kind": "recorder"}, headers=admin).json()["kind"] == "board"

    retired = api.post(A + "/devices/B-OLD-001/retire", json={"reason": "损坏报废"}, headers=admin)
    assert retired.status_code == 200 and retired.json()["retired_reason"] == "损坏报废"
    assert db.execute("SELECT 1 FROM device WHERE id = 'B-OLD-001'").fetchone() is None
    assert db.execute("SELECT 1 FROM device_all WHERE id = 'B-OLD-001'").fetchone() is not None
    states = {r["id"]: (r["state"], r["resolution"]) for r in db.execute("SELECT id, state, resolution FROM alert")}
    assert states[firing] == states[pending] == ("resolved", "device retired")
    assert states[closed] == ("resolved", None) and states[other][0] == "firing"
    assert audits(db, "admin.device.retire")[0]["detail"]["alerts_resolved"] == 2

    assert api.post(A + "/devices/B-OLD-001/retire", json={"reason": "x"}, headers=admin).status_code == 409
    assert api.patch(A + "/devices/B-OLD-001", json={"room": "1"}, headers=admin).status_code == 409
    assert api.post(A + "/devices", json=device_body(area["zengdu"], "B-OLD-001"), headers=admin).status_code == 409
    in_service = api.get(A + "/devices", headers=admin).json()["items"]
    assert "B-OLD-001" not in {d["id"] for d in in_service}
    gone = api.get(A + "/devices", params={"retired": True}, headers=admin).json()
    assert [d["id"] for d in gone["items"]] == ["B-OLD-001"] and gone["items"][0]["school_name"]

    back = api.post(A + "/devices/B-OLD-001/return", headers=admin)
    assert back.status_code == 200 and back.json()["retired_at"] is None
    assert api.post(A + "/devices/B-OLD-001/return", headers=admin).status_code == 409
    assert db.execute("SELECT 1 FROM device WHERE id = 'B-OLD-001'").fetchone()
    changes = history(db, "device", "B-OLD-001")
    assert [h["change"] for h in changes] == ["moved", "retired", "returned"]
    assert (changes[0]["before"]["room"], changes[0]["after"]["room"]) == ("101", "202")
    assert changes[1]["after"]["retired_reason"] == "损坏报废" and changes[1]["before"]["retired_at"] is None


@pytest.mark.parametrize("field, value", [("id", "ab"), ("id", "x" * 65), ("id", "has space"), ("kind", "tv"),
                                          ("room", "r" * 65), ("vendor", "a\x00"), ("installed_on", "3000-01-01"),
                                          ("installed_on", 20240101), ("school_code", "12345")])
def test_device_values_past_the_columns_are_refused(api, area, field, value):
    r = api.post(A + "/devices", json=device_body(area["zengdu"], **{field: value}),
                 headers=login(api, "suizhou-admin"))
    assert r.status_code == 422 and r.json()["errors"][0]["loc"][-1] == field, r.text


def test_a_retirement_reason_is_at_most_500_characters(api, area, registry):
    device = registry.device(area["zengdu"])
    admin = login(api, "suizhou-admin")
    assert api.post(f"{A}/devices/{device}/retire", json={"reason": "x" * 501}, headers=admin).status_code == 422
    assert api.post(f"{A}/devices/{device}/retire", json={"reason": "x" * 500}, headers=admin).status_code == 200


# -- communities ------------------------------------------------------------------------------------
def test_communities_members_join_lead_and_leave(api, area, db, registry):
    admin = login(api, "suizhou-admin")
    extra = registry.school(county="421303")
    r = api.post(A + "/communities", json={"code": "C-NEW", "name": "曾都教联体", "kind": "co_built",
                                           "lead_school_code": area["zengdu"], "founded_on": "2024-09-01"},
                 headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["county_code"] == "421303"
    assert [(m["school_code"], m["role"], m["joined_on"]) for m in r.json()["members"]] == [
        (area["zengdu"], "lead", "2024-09-01")]
    joined = api.put(f"{A}/communities/C-NEW/members/{area['suixian']}", json={"role": "member"}, headers=admin)
    assert joined.status_code == 200 and len(joined.json()["members"]) == 2
    api.put(f"{A}/communities/C-NEW/members/{extra}", json={"role": "member", "joined_on": "2025-02-01"},
            headers=admin)
    led = api.put(f"{A}/communities/C-NEW/members/{area['suixian']}", json={"role": "lead"}, headers=admin)
    assert led.json()["lead_school_code"] == area["suixian"] and led.json()["county_code"] == "421321"
    roles = {m["school_code"]: m["role"] for m in led.json()["members"]}
    assert roles == {area["zengdu"]: "member", area["suixian"]: "lead", extra: "member"}
    assert api.delete(f"{A}/communities/C-NEW/members/{area['suixian']}", headers=admin).status_code == 409
    assert api.put(f"{A}/communities/C-NEW/members/{area['suixian']}", json={"role": "member"},
                   headers=admin).status_code == 409
    left = api.delete(f"{A}/communities/C-NEW/members/{extra}", headers=admin)
    assert left.status_code == 200 and extra not in {m["school_code"] for m in left.json()["members"]}
    assert api.delete(f"{A}/communities/C-NEW/members/{extra}", headers=admin).status_code == 404
    renamed = api.patch(A + "/communities/C-NEW", json={"name": "随县教联体", "lead_school_code": area["zengdu"]},
                        headers=admin)
    assert renamed.json()["name"] == "随县教联体" and renamed.json()["county_code"] == "421303"

    assert [h["change"] for h in history(db, "community_member", f"C-NEW/{extra}")] == ["joined", "left"]
    assert [h["change"] for h in history(db, "community", "C-NEW")] == ["created", "moved", "moved"]
    listed = api.get(A + "/communities", params={"q": "c-new"}, headers=admin).json()
    assert listed["total"] == 1 and listed["items"][0]["members"][0]["school_name"]


# -- operations teams -------------------------------------------------------------------------------
def test_operations_teams_one_per_scope(api, area, db):
    admin = login(api, "suizhou-admin")
    body = {"name": "曾都运维", "scope_level": "county", "scope_code": "421303", "email": "ops@example.cn",
            "mqtt_topic": "edu/ops/zengdu"}
    r = api.post(A + "/ops-teams", json=body, headers=admin)
    assert r.status_code == 201, r.text
    team = r.json()["id"]
    assert api.post(A + "/ops-teams", json={**body, "name": "again"}, headers=admin).status_code == 409
    for bad in ({"mqtt_topic": "edu/dev/x/cmd"}, {"mqtt_topic": "edu/ops/#"}, {"webhook_url": "ftp://x"},
                {"email": "not-an-address"}, {"name": "n" * 101}):
        assert api.post(A + "/ops-teams", json={**body, **bad}, headers=admin).status_code == 422, bad
    changed = api.patch(f"{A}/ops-teams/{team}", json={"webhook_url": "https://hooks.example.cn/a", "email": None},
                        headers=admin)
    assert changed.status_code == 200 and changed.json()["email"] is None
    assert api.get(A + "/ops-teams", headers=admin).json()["total"] == 1
    detail = audits(db, "admin.ops_team.update")[0]["detail"]
    assert detail["before"]["email"] == "ops@example.cn" and detail["after"]["webhook_url"].startswith("https://")


@pytest.mark.parametrize("field, value", [("username", "a"), ("username", "a/b"), ("username", "a\x00b"),
                                          ("username", "u" * 65), ("username", "张三"), ("display_name", "名" * 101),
                                          ("display_name", "a\x00"), ("role", "root"), ("scope_level", "nation"),
                                          ("scope_code", "4213\x00"), ("password", "p\x00ssword123")])
def test_user_values_past_the_columns_are_refused(api, area, field, value):
    body = {"username": "newbie", "display_name": "新人", "role": "viewer", "scope_level": "county",
            "scope_code": "421303", field: value}
    r = api.post(A + "/users", json=body, headers=login(api, "suizhou-admin"))
    assert r.status_code == 422 and r.json()["errors"][0]["loc"][-1] == field, r.text


def test_the_provisioning_sheet_is_no_device(api, area):
    admin = login(api, "suizhou-admin")
    r = api.patch(A + "/devices/provisioning.xlsx", json={"room": "1"}, headers=admin)
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"


def test_a_refusal_of_the_database_leaves_the_session_as_psycopgs_own_error(db):
    """So api.errors answers it 409/422 like any other route's (a validation gap, logged), never a 500."""
    requests = get_session()
    session = next(requests)
    with pytest.raises(DBAPIError) as refused:
        session.exec(text("INSERT INTO province (code, name) VALUES ('x', NULL)"))
    with pytest.raises(psycopg.errors.NotNullViolation):
        requests.throw(refused.value)
    assert db.execute("SELECT count(*) AS n FROM province").fetchone()["n"] == 0
