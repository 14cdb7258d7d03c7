"""A bureau of another province adopts the platform, end to end, on a real database, a real broker
kept in step with the registry, and a real ingest worker:

its spreadsheets (a Shaanxi city with real county codes, one county the data package still lists
under its old code) are checked in a dry run that reports every planted error by sheet, row and
column and changes nothing; the clean file applies; the city's manager logs in and sees that city
only; its administrator registers a new board, which connects with the credentials it was given
and whose readings reach the city's figures; a retired board is refused by the broker; and the
same file imported again changes nothing.
"""

import io
import threading

import pandas as pd
import pytest

from api.registry.importer import apply, plan, read_workbook
from core import contract
from core.contract import Channel
from core.credentials import device_password
from core.settings import platform_settings
from ingest.service import IngestService
from ingest.settings import IngestSettings
from ops.broker_auth import write_files
from ops.broker_sync import BrokerSync
from ops.embedded import EmbeddedMosquitto
from tests.fixtures.devices import board_reading, wait_for
from tests.security.test_broker_auth import INGEST, PLATFORM_PASSWORD, SECRET, Secured

CITY, WEIBIN, JINTAI, FENGXIANG = "610300", "610302", "610303", "610305"
PASSWORD = "Baoji-2026-import"

SCHOOLS = [
    {"学校标识码": "2161030201", "学校名称": "宝鸡市渭滨区清姜小学", "区县代码": WEIBIN, "城乡类型": "城区",
     "学段": "小学", "班级数": 24, "学生数": 1100, "教师数": 70, "出口带宽Mbps": 1000, "经度": 107.14, "纬度": 34.36},
    {"学校标识码": "2161030301", "学校名称": "宝鸡市金台区东仁堡小学", "区县代码": JINTAI, "城乡类型": "镇区",
     "学段": "九年一贯制", "班级数": 18, "学生数": 760, "教师数": 52, "出口带宽Mbps": 300, "经度": 107.15,
     "纬度": 34.38},
    {"学校标识码": "2161030501", "学校名称": "宝鸡市凤翔区横水镇中心小学", "区县代码": FENGXIANG,
     "城乡类型": "乡村", "学段": "小学", "班级数": 12, "学生数": 420, "教师数": 30, "出口带宽Mbps": 100,
     "经度": 107.39, "纬度": 34.52},
]
DEVICES = [
    {"设备编号": "BJ-WB-B01", "设备类型": "一体机", "学校标识码": "2161030201", "教室": "三年级1班",
     "厂商": "希沃", "型号": "MAXHUB-V6", "安装日期": "2025-08-20"},
    {"设备编号": "BJ-WB-R01", "设备类型": "录播教室", "学校标识码": "2161030201", "教室": "录播室",
     "厂商": "奥威亚", "型号": "AVA-R9", "安装日期": "2025-08-20"},
    {"设备编号": "BJ-FX-B01", "设备类型": "一体机", "学校标识码": "2161030501", "教室": "一年级1班",
     "厂商": "希沃", "型号": "MAXHUB-V6", "安装日期": "2025-09-01"},
]
COMMUNITIES = [
    {"教联体编号": "BJ-JLT-01", "教联体名称": "渭滨—凤翔城乡教联体", "类型": "共建型", "学校标识码": "2161030201",
     "角色": "牵头"},
    {"教联体编号": "BJ-JLT-01", "教联体名称": "渭滨—凤翔城乡教联体", "类型": "共建型", "学校标识码": "2161030501",
     "角色": "成员"},
]
USERS = [
    {"用户名": "baoji-admin", "姓名": "宝鸡市电教馆管理员", "角色": "管理员", "范围级别": "市", "范围代码": CITY,
     "初始密码": PASSWORD},
    {"用户名": "baoji-manager", "姓名": "宝鸡市教育局", "角色": "管理者", "范围级别": "市", "范围代码": CITY,
     "初始密码": PASSWORD},
]
DIVISIONS = [{"行政区划代码": FENGXIANG, "名称": "凤翔区", "上级代码": CITY}]


def workbook(**changes: list[dict]) -> bytes:
    """The bureau's workbook as XLSX bytes; `changes` replaces a sheet's rows."""
    sheets = {"学校": SCHOOLS, "设备": DEVICES, "教联体": COMMUNITIES, "用户": USERS, "区划": DIVISIONS, **changes}
    out = io.BytesIO()
    with pd.ExcelWriter(out, engine="openpyxl") as writer:
        for name, rows in sheets.items():
            pd.DataFrame(rows).to_excel(writer, sheet_name=name, index=False)
    return out.getvalue()


def registry_counts(db) -> dict[str, int]:
    tables = ("province", "city", "county", "school", "device_all", "community", "community_member", "app_user",
              "registry_history", "audit_log")
    return {t: db.execute(f"SELECT count(*) AS n FROM {t}").fetchone()["n"] for t in tables}  # noqa: S608


def change_password(api, username: str) -> dict[str, str]:
    """Log in with the initial password, choose a new one, and return the headers of a fresh login."""
    token = api.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert token.status_code == 200, token.text
    first = {"Authorization": f"Bearer {token.json()['access_token']}"}
    new = PASSWORD + "-changed"
    r = api.post("/api/v1/auth/password", headers=first, json={"current_password": PASSWORD, "new_password": new})
    assert r.status_code in (200, 204), r.text
    token = api.post("/api/v1/auth/token", data={"username": username, "password": new})
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


@pytest.fixture
def platform(tmp_path, db, database_url):
    """A broker kept in step with the registry, and an ingest worker logged in with its own account."""
    auth = tmp_path / "auth"

    def write(conn):
        return write_files(conn, auth, SECRET, PLATFORM_PASSWORD, ingest_workers=["1"])

    passwords, acl = write(db)
    broker = EmbeddedMosquitto(tmp_path / "mq", password_file=passwords, acl_file=acl,
                               include_dir=auth / "conf.d").start()
    stop = threading.Event()
    sync = BrokerSync(database_url, write, broker.reload, settle_s=0.2)
    listener = threading.Thread(target=sync.run, args=(stop,), daemon=True)
    listener.start()
    wait_for(lambda: sync.rewrites >= 1)
    secured = Secured(broker, [], auth)
    settings = secured.platform(INGEST, database_url=database_url).model_copy(update={"data_dir": tmp_path})
    ingest = IngestService(settings, IngestSettings(worker_id="1", batch_wait_ms=50, device_rate_per_s=0))
    ingest.start()
    yield secured
    ingest.stop(end_session=True)
    for peer in secured.peers:
        peer.close()
    stop.set()
    listener.join(10)
    broker.stop()


@pytest.fixture
def provisioning(monkeypatch):
    """The API prints new devices' credentials under the test's provisioning secret."""
    monkeypatch.setenv("COCKPIT_DEVICE_SECRET", SECRET)
    platform_settings.cache_clear()
    yield
    monkeypatch.delenv("COCKPIT_DEVICE_SECRET")
    platform_settings.cache_clear()


def test_a_bureau_of_another_province_adopts_the_platform(provisioning, api, db, platform):
    before = registry_counts(db)

    # 1. The dry run of a file with planted errors names each one and changes nothing.
    broken = workbook(
        学校=[{**SCHOOLS[0], "学校标识码": "21610302"}, *SCHOOLS[1:]],                      # row 2: 8 digits
        设备=[*DEVICES[:2], {**DEVICES[2], "学校标识码": "2161039999"}],                    # row 4: no such school
        用户=[USERS[0], {**USERS[1], "范围代码": "619900"}])                                # row 3: no such city
    report = apply(db, read_workbook(broken, "bureau.xlsx"), "cli:onboarding", dry_run=True)
    found = {(e.sheet, e.row, e.column) for e in report.errors}
    assert {("学校", 2, "学校标识码"), ("设备", 4, "学校标识码"), ("用户", 3, "范围代码")} <= found, found
    assert all(e.reason_zh and e.reason_en for e in report.errors)
    assert registry_counts(db) == before

    # 2. The clean file applies; the division the package lags behind on comes from the 区划 sheet.
    report = apply(db, read_workbook(workbook(), "bureau.xlsx"), "cli:onboarding")
    assert report.ok, report.errors
    names = {r["code"]: r["name"] for r in db.execute("SELECT code, name FROM county WHERE city_code = %s", (CITY,))}
    assert names == {WEIBIN: "渭滨区", JINTAI: "金台区", FENGXIANG: "凤翔区"}
    assert db.execute("SELECT name FROM province WHERE code = '610000'").fetchone()["name"] == "陕西省"

    # 3. The city's manager sees the city and nothing else.
    manager = change_password(api, "baoji-manager")
    city = api.get(f"/api/v1/scopes/city/{CITY}/figures?keys=devices", headers=manager)
    assert city.status_code == 200 and city.json()["figures"]["devices"]["value"] == 3
    assert api.get("/api/v1/scopes/province/610000/figures?keys=devices", headers=manager).status_code == 404
    assert api.get("/api/v1/scopes/province/420000/figures?keys=devices", headers=manager).status_code == 404

    # 4. Its administrator registers a new board; it connects with the credentials it was given at once,
    #    and what it sends reaches the city's figures.
    admin = change_password(api, "baoji-admin")
    r = api.post("/api/v1/admin/devices", headers=admin, json={
        "id": "BJ-JT-B01", "kind": "board", "school_code": "2161030301", "room": "五年级2班", "vendor": "希沃",
        "model": "MAXHUB-V6"})
    assert r.status_code == 201, r.text
    mqtt = r.json()["mqtt"]
    assert (mqtt["username"], mqtt["password"]) == ("BJ-JT-B01", device_password(SECRET, "BJ-JT-B01"))
    board = wait_for(lambda: (p := platform.peer(mqtt["username"], mqtt["password"])).refused is None and p,
                     timeout=30)
    board.publish(contract.topic("BJ-JT-B01", Channel.STATUS), contract.encode(contract.birth(
        board_reading().ts)), retain=True)
    board.publish(contract.topic("BJ-JT-B01", Channel.TELEMETRY), contract.encode(board_reading()))

    def city_figures() -> dict:
        body = api.get(f"/api/v1/scopes/city/{CITY}/figures?keys=devices,online", headers=manager).json()
        return {k: v["value"] for k, v in body["figures"].items()}

    wait_for(lambda: city_figures() == {"devices": 4, "online": 1}, timeout=30)

    # 5. A board the bureau retires is refused by the broker on its next connect.
    r = api.post("/api/v1/admin/devices/BJ-JT-B01/retire", headers=admin, json={"reason": "屏幕损坏"})
    assert r.status_code == 200, r.text
    wait_for(lambda: platform.peer(mqtt["username"], mqtt["password"]).refused is not None, timeout=30)
    assert city_figures()["devices"] == 3

    # 6. The same file again changes nothing, and says so.
    settled = registry_counts(db)
    again = apply(db, read_workbook(workbook(), "bureau.xlsx"), "cli:onboarding")
    assert again.ok and again.changed == 0
    assert registry_counts(db) == settled
    assert plan(db, read_workbook(workbook(), "bureau.xlsx"), "cli:onboarding").changed == 0
