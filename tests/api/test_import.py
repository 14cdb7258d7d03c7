"""`cockpit import`: a bureau's workbook checked whole and applied whole, against a real database.

The workbook is a real city of a second province (陕西 宝鸡市: 渭滨区 610302, 金台区 610303, 陈仓区
610304, and 凤翔区 under its new code 610305 through a 区划 row, since the division data still
lists it as 610322), written with pandas in each test.
"""

import io

import pandas as pd
import pytest
from openpyxl import load_workbook

from api.registry import importer
from api.registry.divisions import package
from api.registry.import_check import check_workbook
from api.registry.import_read import read_workbook
from api.registry.import_spec import SHEETS
from core.security import verify_password
from tests.fixtures.app import login
from tests.fixtures.workbooks import INITIAL_PASSWORD, baoji, counts, csv_files, escaped, xlsx

ACTOR = "cli:tester"


def run(db, sheets, *, dry_run=False, scope=None, actor=ACTOR, name="宝鸡.xlsx"):
    return importer.apply(db, read_workbook(xlsx(sheets), name), actor, scope, dry_run=dry_run)


def errors_at(report) -> set[tuple[str, int, str | None]]:
    return {(e.sheet, e.row, e.column) for e in report.errors}


def history(db) -> list[dict]:
    return db.execute("SELECT entity, key, change, before, after, changed_by, source FROM registry_history "
                      "ORDER BY id").fetchall()


# -- a clean file, twice ------------------------------------------------------------------------


def test_clean_file_applies_and_importing_it_again_changes_nothing(db):
    report = run(db, baoji())
    assert report.ok and report.applied, report.errors
    assert report.changes["schools"] == {"created": 8, "changed": 0, "moved": 0, "unchanged": 0}
    assert report.changes["devices"]["created"] == 10
    assert report.changes["communities"]["created"] == 2 and report.changes["communities"]["joined"] == 5
    assert report.changes["users"]["created"] == 5
    assert report.changes["divisions"] == {"created": 6, "renamed": 0, "moved": 0}  # 陕西, 宝鸡, four counties

    assert db.execute("SELECT name FROM province WHERE code = '610000'").fetchone()["name"] == "陕西省"
    assert db.execute("SELECT name, province_code FROM city WHERE code = '610300'").fetchone() == {
        "name": "宝鸡市", "province_code": "610000"}
    assert db.execute("SELECT name, city_code FROM county WHERE code = '610305'").fetchone() == {
        "name": "凤翔区", "city_code": "610300"}
    school = db.execute("SELECT * FROM school WHERE code = '6103040001'").fetchone()
    assert (school["county_code"], school["city_code"], school["province_code"], school["stage"], school["locale"]) == (
        "610304", "610300", "610000", "complete", "town")
    community = db.execute("SELECT * FROM community WHERE code = 'C610302001'").fetchone()
    assert (community["lead_school_code"], community["county_code"], community["kind"]) == ("6103020001", "610302",
                                                                                            "merged")

    # passwords: the given one is set, the others generated and shown once; all must be changed
    generated = {p["username"]: p["password"] for p in report.passwords}
    assert set(generated) == {"weibin", "weibin_ops", "shiyan", "c610302001"}
    users = {u["username"]: u for u in db.execute("SELECT * FROM app_user").fetchall()}
    assert verify_password(users["baoji_admin"]["password_hash"], INITIAL_PASSWORD)
    assert verify_password(users["weibin"]["password_hash"], generated["weibin"])
    assert all(u["must_change_password"] and u["created_by"] == ACTOR for u in users.values())
    audit = db.execute("SELECT * FROM audit_log WHERE action = 'registry.import'").fetchall()
    assert len(audit) == 1 and audit[0]["username"] == ACTOR
    assert audit[0]["detail"]["sha256"] == report.sha256 and audit[0]["detail"]["changes"]["schools"]["created"] == 8
    assert INITIAL_PASSWORD not in str(audit[0]["detail"]) and generated["weibin"] not in str(audit[0]["detail"])

    kept = {}
    for h in history(db):
        assert h["changed_by"] == ACTOR and h["source"] == "import"
        kept[(h["entity"], h["change"])] = kept.get((h["entity"], h["change"]), 0) + 1
    assert kept == {("school", "created"): 8, ("device", "created"): 10, ("community", "created"): 2,
                    ("community_member", "joined"): 5, ("user", "created"): 5}
    assert all("password" not in str(h["after"]) for h in history(db))

    before, past = counts(db), history(db)
    hashes = {u["username"]: u["password_hash"] for u in db.execute("SELECT * FROM app_user").fetchall()}
    again = run(db, baoji())
    assert again.ok and again.changed == 0 and again.passwords == []
    assert all(n == 0 for group in again.changes.values() for k, n in group.items() if k != "unchanged")
    assert again.changes["devices"]["unchanged"] == 10
    assert counts(db) == before and history(db) == past  # no history, no audit entry
    assert {u["username"]: u["password_hash"] for u in db.execute("SELECT * FROM app_user").fetchall()} == hashes


def test_a_second_province_beside_the_first(db, registry):
    registry.area()  # 湖北 随州 曾都区, as the factories make it
    registry.school()
    assert run(db, baoji()).ok
    provinces = {r["code"] for r in db.execute("SELECT code FROM province").fetchall()}
    assert provinces == {"420000", "610000"}


# -- errors: reported where they are, nothing changed -------------------------------------------


def planted() -> tuple[dict, set]:
    sheets = baoji()
    s, d, c, u = sheets["学校"], sheets["设备"], sheets["教联体"], sheets["用户"]
    s[0]["学校标识码"] = "610302001"  # row 2: nine digits
    s[1]["学段"] = "大学"  # row 3
    s[2]["学生数"] = -5  # row 4
    s[3]["班级数"] = 2**31  # row 5: beyond integer
    s[4]["学校名称"] = "校" * 101  # row 6
    s[5]["纬度"] = 64.0  # row 7: north of China
    s[6]["区县代码"] = "610399"  # row 8: no such county
    s[7]["学校名称"] = "凤翔\x00高中"  # row 9
    d[0]["设备编号"] = "B!"  # row 2
    d[1]["学校标识码"] = "6103999999"  # row 3: neither in the file nor in the registry
    d[2]["安装日期"] = "1899-12-31"  # row 4
    d[4]["设备编号"] = d[3]["设备编号"]  # rows 5 and 6: the same id twice
    c[1]["角色"] = "牵头"  # row 3: a second lead of C610302001
    u[1]["范围代码"] = "610399"  # row 3: no such county
    u[2]["初始密码"] = "short1"  # row 4: breaks the policy
    expected = {("学校", 2, "学校标识码"), ("学校", 3, "学段"), ("学校", 4, "学生数"), ("学校", 5, "班级数"),
                ("学校", 6, "学校名称"), ("学校", 7, "纬度"), ("学校", 8, "区县代码"), ("学校", 9, "学校名称"),
                ("设备", 2, "设备编号"), ("设备", 3, "学校标识码"), ("设备", 4, "安装日期"), ("设备", 5, "设备编号"),
                ("设备", 6, "设备编号"), ("教联体", 2, "角色"), ("教联体", 3, "角色"), ("用户", 3, "范围代码"),
                ("用户", 4, "初始密码"),
                ("用户", 5, "范围代码")}  # its school 6103020001 is gone from the file (row 2's code is wrong)
    return sheets, expected


@pytest.mark.parametrize("dry_run", [True, False])
def test_planted_errors_are_reported_by_sheet_row_and_column_and_change_nothing(db, dry_run):
    sheets, expected = planted()
    before, past = counts(db), history(db)
    report = run(db, sheets, dry_run=dry_run)
    assert not report.ok and not report.applied and report.passwords == []
    assert errors_at(report) == expected, sorted(errors_at(report) ^ expected)
    assert all(e.reason_zh and e.reason_en for e in report.errors)
    assert counts(db) == before and history(db) == past
    reasons = {(e.sheet, e.row): e.reason_en for e in report.errors}
    assert "2147483647" in reasons[("学校", 5)] and "NUL" in reasons[("学校", 9)]
    assert "neither in the file" in reasons[("设备", 3)] and "1900" in reasons[("设备", 4)]
    assert "short1" not in str(report.as_dict())  # a password is never echoed


def test_a_clean_dry_run_counts_what_it_would_change_and_writes_nothing(db):
    before = counts(db)
    report = run(db, baoji(), dry_run=True)
    assert report.ok and not report.applied and report.dry_run
    assert report.changes["schools"]["created"] == 8 and report.changes["devices"]["created"] == 10
    assert report.passwords == [] and counts(db) == before


def test_a_county_the_division_data_lacks_needs_a_divisions_row(db):
    sheets = baoji()
    del sheets["区划"]
    report = run(db, sheets, dry_run=True)
    assert errors_at(report) == {("学校", 8, "区县代码"), ("学校", 9, "区县代码")}
    sheets["学校"][6]["区县代码"] = sheets["学校"][7]["区县代码"] = "610322"  # its old code still works
    assert run(db, sheets, dry_run=True).ok


def test_a_divisions_row_renames(db):
    assert run(db, baoji()).ok
    sheets = baoji()
    sheets["区划"].append({"行政区划代码": "610304", "名称": "陈仓新区", "上级代码": "610300"})
    report = run(db, sheets)
    assert report.changes["divisions"] == {"created": 0, "renamed": 1, "moved": 0} and report.changed == 1
    assert db.execute("SELECT name FROM county WHERE code = '610304'").fetchone()["name"] == "陈仓新区"
    sheets["区划"].append({"行政区划代码": "610306", "名称": "无名区", "上级代码": "619900"})
    assert errors_at(run(db, sheets, dry_run=True)) == {("区划", 4, "上级代码")}


# -- moves, leaves, retirements ------------------------------------------------------------------


def test_moves_leaves_and_retirements_are_history(db):
    assert run(db, baoji()).ok
    sheets = baoji()
    sheets["学校"][1]["区县代码"] = "610303"  # 6103020002 moves to 金台区
    sheets["设备"][1]["学校标识码"] = "6103030001"  # B6103020001-02 moves school
    sheets["设备"][4]["教室"] = "二年级2班"  # B6103030001-01 moves room
    sheets["设备"][9]["状态"] = "退役"  # B6103050002-01 retires
    del sheets["教联体"][2]  # 6103040002 leaves C610302001
    sheets["学校"][0]["学生数"] = 999  # a plain change
    report = run(db, sheets, actor="cli:mover")
    assert report.ok, report.errors
    assert report.changes["schools"] == {"created": 0, "changed": 2, "moved": 1, "unchanged": 6}
    assert report.changes["devices"] == {"created": 0, "changed": 3, "moved": 2, "retired": 1, "returned": 0,
                                         "unchanged": 7}
    assert report.changes["communities"]["left"] == 1

    rows = {(h["entity"], h["key"], h["change"]): h for h in history(db) if h["changed_by"] == "cli:mover"}
    assert set(rows) == {("school", "6103020002", "moved"), ("school", "6103020001", "changed"),
                         ("device", "B6103020001-02", "moved"),
                         ("device", "B6103030001-01", "moved"), ("device", "B6103050002-01", "retired"),
                         ("community_member", "C610302001/6103040002", "left")}
    assert all(h["source"] == "import" for h in rows.values())
    moved = rows[("school", "6103020002", "moved")]
    assert moved["before"]["county_code"] == "610302" and moved["after"]["county_code"] == "610303"
    device = rows[("device", "B6103020001-02", "moved")]
    assert device["before"]["school_code"] == "6103020001" and device["after"]["school_code"] == "6103030001"
    assert db.execute("SELECT county_code FROM school WHERE code = '6103020002'").fetchone()["county_code"] == "610303"
    retired = db.execute("SELECT retired_at, retired_reason FROM device_all WHERE id = 'B6103050002-01'").fetchone()
    assert retired["retired_at"] is not None and retired["retired_reason"]
    assert db.execute("SELECT 1 FROM device WHERE id = 'B6103050002-01'").fetchone() is None
    members = {r["school_code"] for r in db.execute(
        "SELECT school_code FROM community_member WHERE community_code = 'C610302001'").fetchall()}
    assert members == {"6103020001", "6103030002"}

    assert run(db, sheets).changed == 0  # the same file again: nothing
    sheets["设备"][9]["状态"] = "在用"  # back in service
    report = run(db, sheets, actor="cli:mover")
    assert report.changes["devices"]["returned"] == 1 and report.changed == 1
    assert db.execute("SELECT 1 FROM device WHERE id = 'B6103050002-01'").fetchone() is not None
    assert history(db)[-1]["change"] == "returned"


def test_a_new_lead_and_a_school_moving_take_the_community_along(db):
    assert run(db, baoji()).ok
    sheets = baoji()
    c = sheets["教联体"]
    c[0]["角色"], c[1]["角色"] = "成员", "牵头"  # 6103030002 (金台区) leads C610302001 now
    report = run(db, sheets)
    assert report.ok and report.changes["communities"]["roles_changed"] == 2
    community = db.execute("SELECT * FROM community WHERE code = 'C610302001'").fetchone()
    assert (community["lead_school_code"], community["county_code"]) == ("6103030002", "610303")
    changes = {(h["key"], h["change"]) for h in history(db)}
    assert ("C610302001", "changed") in changes and ("C610302001/6103030002", "changed") in changes


# -- other shapes of the same file ----------------------------------------------------------------


def test_csv_files_one_per_sheet_utf8_and_gb18030(db, tmp_path):
    sheets = baoji()
    csv_files({k: v for k, v in sheets.items() if k != "学校"}, tmp_path / "book")
    csv_files({"学校": sheets["学校"]}, tmp_path / "book", encoding="gb18030")  # as Excel saves it on Chinese Windows
    report = importer.apply(db, read_workbook(tmp_path / "book"), ACTOR)
    assert report.ok, report.errors
    assert report.changes["schools"]["created"] == 8 and report.changes["devices"]["created"] == 10
    assert db.execute("SELECT name FROM school WHERE code = '6103020001'").fetchone()["name"] == "渭滨区实验小学"
    # a single CSV upload named after nothing in particular: recognised by its headers
    devices = pd.DataFrame(sheets["设备"]).assign(教室="三楼").to_csv(index=False).encode()
    report = importer.apply(db, read_workbook(devices, "export-2024.csv"), ACTOR)
    assert report.ok and report.changes["devices"] == {"created": 0, "changed": 10, "moved": 10, "retired": 0,
                                                       "returned": 0, "unchanged": 0}


def test_english_headers_and_sheet_names(db):
    english = {"区划": "divisions", "学校": "schools", "设备": "devices", "教联体": "communities", "用户": "users"}
    names = {s.zh: {c.zh: c.key for c in s.columns} for s in SHEETS}
    sheets = {english[k]: [{names[k][h]: v for h, v in row.items()} for row in rows] for k, rows in baoji().items()}
    for row in sheets["schools"]:
        row["locale"] = {"城区": "urban", "镇区": "town", "乡村": "rural"}[row["locale"]]  # English values too
    report = run(db, sheets)
    assert report.ok, report.errors
    assert report.changes["schools"]["created"] == 8 and report.changes["users"]["created"] == 5
    sheets["schools"][0]["students"] = -1
    bad = run(db, sheets, dry_run=True)
    assert errors_at(bad) == {("schools", 2, "students")}


# -- limits, through the real write ---------------------------------------------------------------


def test_values_at_the_limits_are_stored_and_beyond_them_reported(db):
    sheets = baoji()
    s, d = sheets["学校"], sheets["设备"]
    s[0].update({"班级数": 2**31 - 1, "学生数": 0, "学校名称": "长" * 100, "经度": 73.0, "纬度": 54.0})
    s[1].update({"出口带宽Mbps": 2**31 - 1, "经度": 136.0, "纬度": 3.0})
    d[0].update({"设备编号": "X" * 64, "安装日期": "1900-01-01", "教室": "室" * 64})
    d[1].update({"安装日期": "2999-12-31"})
    report = run(db, sheets)
    assert report.ok, report.errors
    school = db.execute("SELECT * FROM school WHERE code = '6103020001'").fetchone()
    assert (school["classes"], school["students"], len(school["name"]), school["longitude"]) == (2**31 - 1, 0, 100, 73.0)
    device = db.execute("SELECT * FROM device WHERE id = %s", ("X" * 64,)).fetchone()
    assert str(device["installed_on"]) == "1900-01-01" and len(device["room"]) == 64

    sheets = baoji()
    s, d, u = sheets["学校"], sheets["设备"], sheets["用户"]
    s[0].update({"班级数": 2**31, "学校名称": "长" * 101})
    s[1].update({"出口带宽Mbps": 0, "经度": 136.01})
    s[2].update({"教师数": 12.5, "学生数": "很多"})
    s[3].update({"经度": None})  # a latitude without a longitude
    d[0].update({"设备编号": "X" * 65, "安装日期": "3000-01-01"})
    d[1].update({"教室": "室" * 65, "厂商": "\x00"})
    d[2].update({"安装日期": "2023-02-30", "设备类型": "投影仪"})
    u[0].update({"用户名": "bad name", "姓名": "名" * 65})
    report = run(db, sheets)
    assert errors_at(report) == {
        ("学校", 2, "班级数"), ("学校", 2, "学校名称"), ("学校", 3, "出口带宽Mbps"), ("学校", 3, "经度"),
        ("学校", 4, "教师数"), ("学校", 4, "学生数"), ("学校", 5, "经度"),
        ("设备", 2, "设备编号"), ("设备", 2, "安装日期"), ("设备", 3, "教室"), ("设备", 3, "厂商"),
        ("设备", 4, "安装日期"), ("设备", 4, "设备类型"), ("用户", 2, "用户名"), ("用户", 2, "姓名")}


def test_a_device_cannot_change_kind(db):
    assert run(db, baoji()).ok
    sheets = baoji()
    sheets["设备"][0]["设备类型"] = "录播教室"
    assert errors_at(run(db, sheets)) == {("设备", 2, "设备类型")}


def test_an_existing_user_keeps_their_password(db, registry):
    registry.user("weibin", "county", "610302")  # made before the county exists in the registry: fine for a test
    old = db.execute("SELECT password_hash FROM app_user WHERE username = 'weibin'").fetchone()["password_hash"]
    sheets = baoji()
    sheets["用户"][1]["初始密码"] = "Another2024pass"
    report = run(db, sheets)
    assert report.ok and "weibin" not in {p["username"] for p in report.passwords}
    assert [(w.sheet, w.row) for w in report.warnings] == [("用户", 3)]
    row = db.execute("SELECT * FROM app_user WHERE username = 'weibin'").fetchone()
    assert row["password_hash"] == old and row["display_name"] == "渭滨区教育局" and not row["must_change_password"]


# -- scope --------------------------------------------------------------------------------------------


def test_an_administrator_imports_only_inside_their_scope(db):
    assert run(db, baoji()).ok
    weibin = importer.ImportScope("county", "610302")
    sheets = baoji()
    report = run(db, sheets, scope=weibin, actor="weibin")
    outside = {(e.sheet, e.row) for e in report.errors}
    # every school outside 渭滨区, the devices there, the community of 凤翔区, the city-level user, the 区划 row;
    # not the member in 金台区 of 渭滨区's community, which stays (the administration API lets it stay or leave)
    assert ("学校", 2) not in outside and ("学校", 4) in outside and ("设备", 6) in outside
    assert ("区划", 2) in outside and ("用户", 2) in outside and ("教联体", 5) in outside
    assert ("教联体", 3) not in outside
    # a school outside joining 渭滨区's community is refused
    joins = {"教联体": [*sheets["教联体"][:3], dict(sheets["教联体"][2], 学校标识码="6103040001")]}
    assert errors_at(run(db, joins, scope=weibin, actor="weibin")) == {("教联体", 5, "学校标识码")}
    # moving one's own school out of one's county, or someone else's school in, is refused
    own = {"学校": [dict(baoji()["学校"][0], 区县代码="610303")]}
    assert errors_at(run(db, own, scope=weibin, actor="weibin")) == {("学校", 2, "区县代码")}
    theirs = {"学校": [dict(baoji()["学校"][2], 区县代码="610302")]}
    assert errors_at(run(db, theirs, scope=weibin, actor="weibin")) == {("学校", 2, "学校标识码")}
    # inside: fine
    mine = {"学校": [dict(baoji()["学校"][0], 学生数=1)], "设备": [baoji()["设备"][0]]}
    assert run(db, mine, scope=weibin, actor="weibin").ok


def test_an_administrator_cannot_change_their_own_role_by_import(db):
    assert run(db, baoji()).ok
    sheets = {"用户": [dict(baoji()["用户"][0], 角色="查看者")]}
    report = run(db, sheets, scope=importer.ImportScope("city", "610300"), actor="baoji_admin")
    assert errors_at(report) == {("用户", 2, "角色")}


# -- the package's divisions -----------------------------------------------------------------------


def test_municipalities_and_county_level_cities_get_a_city():
    known = package()
    assert known.counties["110105"][1:] == ("110100", "110000")  # 北京 朝阳区
    assert known.counties["500101"][1:] == ("500100", "500000")  # 重庆 万州区: not the province's code
    assert known.cities["500100"] == ("重庆市", "500000")
    assert known.counties["429004"] == ("仙桃市", "429004", "420000")  # 省直辖县级: its own city
    assert known.counties["441900"][1] == "441900"  # 东莞市
    assert known.counties["610322"] == ("凤翔区", "610300", "610000")  # the package's lag


# -- the template -----------------------------------------------------------------------------------


def test_the_template_round_trips(db, tmp_path):
    path = tmp_path / "template.xlsx"
    importer.write_template(path)
    book = load_workbook(path)
    assert book.sheetnames[:5] == ["区划", "学校", "设备", "教联体", "用户"]
    listed = {(ws.title, str(v.sqref).split(":")[0][0]): v.formula1 for ws in book.worksheets
              for v in ws.data_validations.dataValidation}
    assert listed[("学校", "D")] == '"城区,镇区,乡村"' and listed[("设备", "B")] == '"一体机,录播教室,校园网关"'
    assert {("学校", "E"), ("设备", "H"), ("教联体", "C"), ("教联体", "E"), ("用户", "C"), ("用户", "D")} <= set(listed)
    before = counts(db)
    report = importer.plan(db, read_workbook(path), ACTOR)
    assert report.ok, report.errors
    assert report.ignored_sheets == ["说明"] and counts(db) == before


# -- unreadable files -------------------------------------------------------------------------------


def test_unreadable_files_are_refused_with_a_reason():
    with pytest.raises(importer.FileError, match="XLSX"):
        read_workbook(b"PK\x03\x04 not really a zip", "broken.xlsx")
    with pytest.raises(importer.FileError, match="only"):
        read_workbook(b"hello", "notes.txt")
    with pytest.raises(importer.FileError, match="UTF-8"):
        read_workbook(b"\xff\xfe\x00\xd8\x00", "学校.csv")
    book = read_workbook("学校标识码,学校名称\n1,2\n".encode(), "学校.csv")
    assert [(i.row, i.column) for i in check_workbook(book)[1]][:1] == [(1, "区县代码")]


# -- the API -----------------------------------------------------------------------------------------


def _upload(api, headers, content, name="宝鸡.xlsx", dry_run="true"):
    return api.post(f"/api/v1/admin/import?dry_run={dry_run}", headers=headers,
                    files={"file": (name, content, "application/octet-stream")})


def test_the_api_imports_for_administrators_within_their_scope(api, db, registry):
    registry.area("610000", "610300", "610302", names=("陕西省", "宝鸡市", "渭滨区"))
    registry.user("city_admin", "city", "610300", role="admin")
    registry.user("city_manager", "city", "610300", role="manager")
    admin, manager = login(api, "city_admin"), login(api, "city_manager")
    sheets = baoji()
    del sheets["区划"]  # 凤翔区 under the old code the division data has, as a city's bureau might
    for row in sheets["学校"]:
        row["区县代码"] = row["区县代码"].replace("610305", "610322")
    content = xlsx(sheets)

    assert _upload(api, manager, content).status_code == 403
    before = counts(db)
    r = _upload(api, admin, content)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] and body["dry_run"] and not body["applied"] and body["changes"]["schools"]["created"] == 8
    assert counts(db) == before
    r = _upload(api, admin, content, dry_run="false")
    body = r.json()
    assert body["ok"] and body["applied"] and len(body["passwords"]) == 4, body
    assert db.execute("SELECT count(*) AS n FROM school WHERE city_code = '610300'").fetchone()["n"] == 8
    assert db.execute("SELECT username FROM audit_log WHERE action = 'registry.import'").fetchone()["username"] == \
        "city_admin"
    again = _upload(api, admin, content, dry_run="false").json()
    assert again["ok"] and again["changed"] == 0

    # a school of another city (西安 新城区 610102): an error row, nothing written
    other = {"学校": [dict(sheets["学校"][0], 学校标识码="6101020001", 区县代码="610102")]}
    body = _upload(api, admin, xlsx(other), dry_run="false").json()
    assert not body["ok"] and [(e["sheet"], e["row"], e["column"]) for e in body["errors"]] == [("学校", 2, "区县代码")]
    assert db.execute("SELECT 1 FROM school WHERE code = '6101020001'").fetchone() is None

    assert _upload(api, admin, b"hello", name="notes.txt").status_code == 422
    r = _upload(api, admin, b"PK\x03\x04broken", name="broken.xlsx")
    assert r.status_code == 422 and "XLSX" in r.json()["detail"]
    csv = pd.DataFrame(sheets["设备"]).to_csv(index=False).encode()
    assert _upload(api, admin, csv, name="设备.csv").json()["ok"]


def test_the_api_refuses_a_file_too_large(api, registry, monkeypatch):
    from api.registry import import_router

    registry.user("admin1", "province", "610000", role="admin")
    monkeypatch.setattr(import_router, "MAX_BYTES", 1000)
    r = _upload(api, login(api, "admin1"), b"x" * 1001, name="big.csv")
    assert r.status_code == 413


def test_the_api_serves_the_template(api, registry):
    registry.user("admin1", "province", "610000", role="admin")
    r = api.get("/api/v1/admin/import/template", headers=login(api, "admin1"))
    assert r.status_code == 200 and r.content.startswith(b"PK")
    assert load_workbook(io.BytesIO(r.content)).sheetnames[-1] == "说明"
    registry.user("viewer1", "province", "610000", role="viewer")
    assert api.get("/api/v1/admin/import/template", headers=login(api, "viewer1")).status_code == 403



# -- the command line --------------------------------------------------------------------------------


def test_the_command_line_writes_the_template_checks_and_applies(db, tmp_path):
    from typer.testing import CliRunner

    from ops.cli import app

    cli = CliRunner()
    r = cli.invoke(app, ["import", "template", str(tmp_path / "template.xlsx")])
    assert r.exit_code == 0 and (tmp_path / "template.xlsx").stat().st_size > 0
    path = tmp_path / "宝鸡.xlsx"
    path.write_bytes(xlsx(baoji()))
    r = cli.invoke(app, ["import", str(path), "--dry-run"])
    assert r.exit_code == 0 and "dry run" in r.output, r.output
    assert db.execute("SELECT count(*) AS n FROM school").fetchone()["n"] == 0
    r = cli.invoke(app, ["import", str(path)])
    assert r.exit_code == 0 and "applied" in r.output and "shown once" in r.output
    assert db.execute("SELECT count(*) AS n FROM school").fetchone()["n"] == 8
    assert db.execute("SELECT username FROM audit_log WHERE action = 'registry.import'").fetchone()[
        "username"].startswith("cli:")
    sheets = baoji()
    sheets["学校"][0]["学生数"] = -1
    path.write_bytes(xlsx(sheets))
    r = cli.invoke(app, ["import", str(path)])
    assert r.exit_code == 1 and "学生数" in r.output


# -- the administration API's scope rules, by import ---------------------------------------------------

ADMIN = "/api/v1/admin"


@pytest.fixture
def cities(registry):
    """Suizhou (曾都 421303, 随县 421321) and Wuhan (江岸 420102) with schools, devices, a community led from
    曾都 with a member in 随县, and an administrator of every kind."""
    registry.area()
    registry.area(county="421321", names=("湖北省", "随州市", "随县"))
    registry.area(city="420100", county="420102", names=("湖北省", "武汉市", "江岸区"))
    s = {"zengdu": registry.school(county="421303"), "zengdu2": registry.school(county="421303"),
         "suixian": registry.school(county="421321"), "wuhan": registry.school(county="420102")}
    d = {k: registry.device(code, device_id=f"D-{k}") for k, code in s.items()}
    registry.community(s["zengdu"], [s["suixian"]], code="C-SZ")
    admins = {"hubei-admin": ("province", "420000"), "suizhou-admin": ("city", "421300"),
              "zengdu-admin": ("county", "421303"), "school-admin": ("school", s["zengdu"]),
              "community-admin": ("community", "C-SZ"), "wuhan-admin": ("city", "420100")}
    for username, (level, code) in admins.items():
        registry.user(username, level, code, role="admin")
    return s, d, admins


def school_row(db, code: str, **changes) -> dict:
    """The registered school as a 学校 row, with changes (keys as the API names them)."""
    s = db.execute("SELECT * FROM school WHERE code = %s", (code,)).fetchone() | changes
    return {"学校标识码": s["code"], "学校名称": s["name"], "区县代码": s["county_code"], "城乡类型": s["locale"],
            "学段": s["stage"], "班级数": s["classes"], "学生数": s["students"], "教师数": s["teachers"],
            "出口带宽Mbps": s["uplink_mbps"], "经度": s["longitude"], "纬度": s["latitude"]}


def device_row(db, device_id: str, **changes) -> dict:
    d = db.execute("SELECT * FROM device_all WHERE id = %s", (device_id,)).fetchone() | changes
    return {"设备编号": d["id"], "设备类型": d["kind"], "学校标识码": d["school_code"], "教室": d["room"],
            "厂商": d["vendor"], "型号": d["model"], "安装日期": str(d["installed_on"]), "状态": None}


def community_rows(db, code: str, roles: dict[str, str], **changes) -> list[dict]:
    """The community as 教联体 rows with these members {school: role}, and changes (keys as the API names them)."""
    c = db.execute("SELECT * FROM community WHERE code = %s", (code,)).fetchone() | changes
    return [{"教联体编号": code, "教联体名称": c["name"], "类型": c["kind"], "学校标识码": school, "角色": role,
             "成立日期": None} for school, role in roles.items()]


def _attempts(db, s, d) -> list[tuple[str, str, dict | None, dict]]:
    """(method, path, body, the import's sheets) of the same change through the API and through an import."""
    tried = [("PATCH", f"schools/{code}", {"county_code": county}, {"学校": [school_row(db, code, county_code=county)]})
             for code in (s["zengdu"], s["suixian"], s["wuhan"]) for county in ("421303", "421321", "420102", "110101")]
    tried += [("PATCH", f"schools/{code}", {"name": "改名学校"}, {"学校": [school_row(db, code, name="改名学校")]})
              for code in (s["zengdu"], s["suixian"], s["wuhan"])]
    tried += [("PATCH", f"devices/{device}", {"school_code": school}, {"设备": [device_row(db, device, school_code=school)]})
              for device in (d["zengdu"], d["wuhan"]) for school in s.values()]
    for user in ("zengdu-viewer", "suixian-viewer", "wuhan-viewer"):
        for level, code in (("school", s["zengdu2"]), ("county", "421321"), ("city", "421300"), ("community", "C-SZ"),
                            ("county", "420102")):
            row = {"用户名": user, "姓名": user, "角色": "viewer", "范围级别": level, "范围代码": code, "初始密码": None}
            tried.append(("PATCH", f"users/{user}", {"scope_level": level, "scope_code": code}, {"用户": [row]}))
    members = {s["zengdu"]: "lead", s["suixian"]: "member"}
    tried += [("PATCH", "communities/C-SZ", {"name": "新名"}, {"教联体": community_rows(db, "C-SZ", members, name="新名")}),
              ("PUT", f"communities/C-SZ/members/{s['suixian']}", {"role": "lead"},
               {"教联体": community_rows(db, "C-SZ", {s["zengdu"]: "member", s["suixian"]: "lead"})}),
              ("DELETE", f"communities/C-SZ/members/{s['suixian']}", None,
               {"教联体": community_rows(db, "C-SZ", {s["zengdu"]: "lead"})})]
    tried += [("PUT", f"communities/C-SZ/members/{school}", {"role": "member"},
               {"教联体": community_rows(db, "C-SZ", members | {school: "member"})}) for school in (s["zengdu2"], s["wuhan"])]
    return tried


def test_the_import_allows_exactly_what_the_admin_api_allows(api, db, registry, cities):
    """Every administrator tries the same changes through the administration API and through an import (a dry
    run first; what the API allowed is put back): schools moved or renamed, devices moved, users given another
    scope, a community renamed, led by another school, joined and left. The two agree on every one."""
    s, d, admins = cities
    for user, level, code in (("zengdu-viewer", "school", s["zengdu"]), ("suixian-viewer", "county", "421321"),
                              ("wuhan-viewer", "city", "420100")):
        registry.user(user, level, code, role="viewer")
    tables = ("school", "device_all", "app_user", "community", "community_member")
    stored = {t: db.execute(f"SELECT * FROM {t}").fetchall() for t in tables}  # noqa: S608
    outcomes = []
    for username, scope in admins.items():
        headers = login(api, username)
        for method, path, body, sheets in _attempts(db, s, d):
            report = importer.plan(db, read_workbook(xlsx(sheets), "x.xlsx"), username, scope)
            r = api.request(method, f"{ADMIN}/{path}", json=body, headers=headers)
            assert r.status_code in (200, 403, 404), (username, path, r.text)
            outcomes.append((username, method, path, str(body), r.status_code == 200, report.ok))
            if r.status_code == 200:  # put back what the API changed
                db.execute("DELETE FROM community_member")
                for table, rows in stored.items():
                    key = {"device_all": "id", "app_user": "username"}.get(table, "code")
                    for row in rows:
                        columns = list(row)
                        db.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "  # noqa: S608
                                   f"({', '.join(['%s'] * len(columns))}) ON CONFLICT ({key}) DO UPDATE SET "
                                   + ", ".join(f"{c} = excluded.{c}" for c in columns), list(row.values())) \
                            if table != "community_member" else db.execute(
                                "INSERT INTO community_member VALUES (%s, %s, %s, %s)", list(row.values()))
    assert [o for o in outcomes if o[4] != o[5]] == []
    allowed = {o[:4] for o in outcomes if o[4]}
    assert 0 < len(allowed) < len(outcomes)  # the matrix holds both answers
    assert {("school-admin", "PATCH", f"schools/{s['zengdu']}", "{'name': '改名学校'}"),
            ("suizhou-admin", "PATCH", f"schools/{s['zengdu']}", "{'county_code': '421321'}"),
            ("zengdu-admin", "PATCH", "communities/C-SZ", "{'name': '新名'}")} <= allowed
    assert not {("school-admin", "PATCH", f"schools/{s['zengdu']}", "{'county_code': '110101'}"),
                ("community-admin", "PATCH", f"schools/{s['zengdu']}", "{'county_code': '420102'}"),
                ("zengdu-admin", "PATCH", f"schools/{s['zengdu']}", "{'county_code': '421321'}")} & allowed


def test_a_school_or_community_administrator_cannot_move_a_school_out_by_import(db, cities):
    s, _d, admins = cities
    own = {"学校": [school_row(db, s["zengdu"], county_code="110101")]}  # to 北京 东城区
    report = importer.apply(db, read_workbook(xlsx(own), "x.xlsx"), "school-admin", admins["school-admin"])
    assert errors_at(report) == {("学校", 2, "区县代码")} and not report.applied
    lead = {"学校": [school_row(db, s["zengdu"], county_code="420102")]}  # C-SZ's lead, to 武汉
    report = importer.apply(db, read_workbook(xlsx(lead), "x.xlsx"), "community-admin", admins["community-admin"])
    assert errors_at(report) == {("学校", 2, "区县代码")} and not report.applied
    member = {"学校": [school_row(db, s["suixian"], county_code="421303")]}  # a member, not the lead: the same
    report = importer.apply(db, read_workbook(xlsx(member), "x.xlsx"), "community-admin", admins["community-admin"])
    assert errors_at(report) == {("学校", 2, "区县代码")} and not report.applied
    assert db.execute("SELECT county_code FROM school WHERE code = %s", (s["zengdu"],)).fetchone()["county_code"] == \
        "421303"
    assert db.execute("SELECT county_code FROM community WHERE code = 'C-SZ'").fetchone()["county_code"] == "421303"
    # their school's details are theirs to change
    renamed = {"学校": [school_row(db, s["zengdu"], students=999)]}
    assert importer.apply(db, read_workbook(xlsx(renamed), "x.xlsx"), "school-admin", admins["school-admin"]).applied


def test_a_community_does_not_follow_its_lead_school_out_of_another_scope(db, registry, cities):
    s, _d, admins = cities
    registry.community(s["wuhan"], code="C-STALE", county="421303")  # registered in 曾都, led from 武汉
    sheets = {"学校": [school_row(db, s["wuhan"])]}  # unchanged: the community would follow it into 武汉
    report = importer.plan(db, read_workbook(xlsx(sheets), "x.xlsx"), "wuhan-admin", admins["wuhan-admin"])
    assert errors_at(report) == {("学校", 2, "区县代码")}
    assert "community" in report.errors[0].reason_en
    assert importer.plan(db, read_workbook(xlsx(sheets), "x.xlsx"), "suizhou-admin", admins["suizhou-admin"]).errors
    # the city moving its lead school between its own counties takes the community along, inside the city
    sheets = {"学校": [school_row(db, s["zengdu"], county_code="421321")]}
    report = importer.apply(db, read_workbook(xlsx(sheets), "x.xlsx"), "suizhou-admin", admins["suizhou-admin"])
    assert report.applied, report.errors
    assert db.execute("SELECT county_code FROM community WHERE code = 'C-SZ'").fetchone()["county_code"] == "421321"


# -- who decides a division's parent ----------------------------------------------------------------


def divisions(*rows) -> dict:
    return {"区划": [{"行政区划代码": c, "名称": n, "上级代码": p} for c, n, p in rows]}


def test_an_administrator_cannot_claim_a_code_of_another_city_or_province(db, cities):
    _s, _d, admins = cities
    suizhou = admins["suizhou-admin"]
    for row, reason in ((("110102", "西城区", "421300"), "province 110000"),  # Beijing's: its code says so
                        (("420102", "江岸区", "421300"), "under 420100"),  # Wuhan's, as the division data says
                        (("420199", "新区", "421300"), "begins like its city")):  # a code Wuhan's might be next
        report = importer.apply(db, read_workbook(xlsx(divisions(row)), "x.xlsx"), "suizhou-admin", suizhou)
        assert errors_at(report) == {("区划", 2, "上级代码")} and reason in report.errors[0].reason_en, report.errors
    assert db.execute("SELECT count(*) AS n FROM county WHERE code IN ('110102', '420199')").fetchone()["n"] == 0
    # renaming its own county and adding a new one of its own digits are the city's
    report = importer.apply(db, read_workbook(xlsx(divisions(("421303", "曾都新区", "421300"),
                                                             ("421399", "随州新区", "421300"))), "x.xlsx"),
                            "suizhou-admin", suizhou)
    assert report.applied and report.changes["divisions"] == {"created": 1, "renamed": 1, "moved": 0}, report.errors
    # the command line may re-parent a code the package knows (and the registry remembers it did), but not
    # across the province its code names
    assert errors_at(importer.apply(db, read_workbook(xlsx(divisions(("110102", "西城区", "421300"))), "x.xlsx"),
                                    ACTOR)) == {("区划", 2, "上级代码")}
    report = importer.apply(db, read_workbook(xlsx(divisions(("420102", "江岸区", "421300"))), "x.xlsx"), ACTOR)
    assert report.applied and report.changes["divisions"]["moved"] == 1
    assert db.execute("SELECT city_code, city_set_by FROM county WHERE code = '420102'").fetchone() == {
        "city_code": "421300", "city_set_by": ACTOR}
    new = {"学校": [dict(baoji()["学校"][0], 学校标识码="4201029001", 区县代码="420102")]}
    report = importer.apply(db, read_workbook(xlsx(new), "x.xlsx"), "suizhou-admin", suizhou)
    assert report.applied, report.errors
    assert db.execute("SELECT city_code FROM school WHERE code = '4201029001'").fetchone()["city_code"] == "421300"


def test_the_registry_never_reparents_a_code_the_package_knows_unless_the_command_line_said_so(db, registry):
    registry.area()
    registry.area(county="110102", names=("湖北省", "随州市", "西城区"))  # as an earlier import could leave it
    registry.area(county="420102", names=("湖北省", "随州市", "江岸区"))
    school = {"学校": [dict(baoji()["学校"][0], 学校标识码="1101029001", 区县代码="110102")]}
    for actor, scope in ((ACTOR, None), ("sz", ("city", "421300"))):
        report = importer.apply(db, read_workbook(xlsx(school), "x.xlsx"), actor, scope)
        assert errors_at(report) == {("学校", 2, "区县代码")} and "110100" in report.errors[0].reason_en
    wuhan = {"学校": [dict(baoji()["学校"][0], 学校标识码="4201029001", 区县代码="420102")]}
    report = importer.apply(db, read_workbook(xlsx(wuhan), "x.xlsx"), ACTOR)
    assert errors_at(report) == {("学校", 2, "区县代码")} and "420100" in report.errors[0].reason_en
    assert db.execute("SELECT count(*) AS n FROM school").fetchone()["n"] == 0
    # the command line settles it with a 区划 row: the county goes where its code belongs, the school with it
    report = importer.apply(db, read_workbook(xlsx(divisions(("110102", "西城区", "110100")) | school), "x.xlsx"),
                            ACTOR)
    assert report.applied and report.changes["divisions"]["moved"] == 1, report.errors
    assert db.execute("SELECT county_code, city_code, province_code FROM school WHERE code = '1101029001'"
                      ).fetchone() == {"county_code": "110102", "city_code": "110100", "province_code": "110000"}


# -- files with no valid row: a report, never an exception -----------------------------------------------


def _shapes(spec) -> dict[str, list]:
    """A sheet's frames with nothing valid in them: headers only, a row of blanks, a row of nonsense, a row
    of invisible and NUL text, and the required columns but one."""
    headers = [c.zh for c in spec.columns]
    return {"headers only": [headers],
            "blank row": [headers, [None] * len(headers)],
            "nonsense row": [headers, ["-1"] * len(headers)],
            "invisible row": [headers, ["\u200b"] * (len(headers) - 1) + ["\x00"]],
            "missing column": [headers[1:], ["x"] * (len(headers) - 1)],
            "one column": [headers[:1], ["x"]]}


@pytest.mark.parametrize("sheet", SHEETS, ids=[s.key for s in SHEETS])
def test_a_sheet_with_no_valid_row_gives_a_report_never_an_exception(db, registry, sheet, tmp_path):
    registry.area()
    school = registry.school()
    device = {"设备": [["设备编号", "设备类型", "学校标识码", "教室", "厂商", "型号", "安装日期"],
                       ["TD-NEW-1", "一体机", school, "r", "v", "m", None]]}
    for shape, table in _shapes(sheet).items():
        for extra in ({}, device if sheet.key != "devices" else {}):
            book = {sheet.zh: table, **extra}
            for scope in (None, ("city", "421300"), ("school", school)):
                report = importer.plan(db, read_workbook(_raw_xlsx(book), "x.xlsx"), ACTOR, scope)
                assert report.ok == (shape in ("headers only", "blank row")), (shape, extra.keys(), scope, report.errors)
            path = tmp_path / f"{sheet.zh}.csv"
            path.write_text("\n".join(",".join("" if v is None else str(v) for v in row) for row in table) + "\n")
            assert isinstance(importer.plan(db, read_workbook(path), ACTOR), importer.Report)


def _raw_xlsx(sheets: dict[str, list[list]], hidden=(), formula=None) -> bytes:
    """Sheets given as rows of cells (the first the header) with openpyxl: hidden sheets, a formula cell."""
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        ws = book.create_sheet(name)
        for row in rows:
            ws.append([escaped(v) for v in row])
        if name in hidden:
            ws.sheet_state = "hidden"
    if formula:
        book[formula[0]][formula[1]] = "=5*20"  # no cached value: what a script, not Excel, writes
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_the_tester_files_that_answered_500_give_reports(api, db, registry):
    registry.area()
    school = registry.school()
    registry.user("admin1", "province", "420000", role="admin")
    headers = login(api, "admin1")
    head = [c.zh for c in SHEETS[1].columns]
    bad = ["4213038001", "x", "421303", "城区", "小学", 10, -1, 10, 100, None, None]
    body = _upload(api, headers, _raw_xlsx({"学校": [head, bad]})).json()
    assert [(e["sheet"], e["row"], e["column"]) for e in body["errors"]] == [("学校", 2, "学生数")]
    assert "more errors may follow" in body["warnings"][0]["reason_en"]  # sheet errors stop the registry checks
    template = load_workbook(io.BytesIO(importer.write_template()))
    for name in template.sheetnames:
        template[name].delete_rows(2)  # every example row gone; a device of a registered school added
    template["设备"].append(["TD-NEW-1", "一体机", school, "r", "v", "m", None, None])
    out = io.BytesIO()
    template.save(out)
    body = _upload(api, headers, out.getvalue()).json()
    assert body["ok"] and body["changes"]["devices"]["created"] == 1, body
    good = ["4213038002", "x", "421303", "城区", "小学", 10, 1, 10, 100, None, None]
    body = _upload(api, headers, _raw_xlsx({"学校": [head, good]}, formula=("学校", "G2"))).json()
    assert [(e["row"], e["column"]) for e in body["errors"]] == [(2, "学生数")]
    csv_head = ",".join(head).encode()
    for content in (csv_head + b"\n4213038003,a\x00b,421303,\xe5\x9f\x8e\xe5\x8c\xba,\xe5\xb0\x8f\xe5\xad\xa6,1,1,1,1,,\n",
                    csv_head + b'\n4213038005,"abc,421303\n', csv_head):
        r = _upload(api, headers, content, name="学校.csv")
        assert r.status_code == 200 and r.json()["ok"] == (content == csv_head), r.text


# -- encodings and sizes --------------------------------------------------------------------------------


def test_a_csv_mixing_utf8_and_gbk_is_refused_not_stored_as_mojibake():
    head = "code,name,county_code,locale,stage,classes,students,teachers,uplink_mbps,longitude,latitude\n"
    utf8 = "4213035001,实验学校,421303,urban,primary,1,1,1,1,,\n".encode()
    gbk = "4213035002,第二学校,421303,urban,primary,1,1,1,1,,\n".encode("gbk")
    with pytest.raises(importer.FileError, match="mixed encodings"):
        read_workbook(head.encode() + utf8 + gbk, "学校.csv")
    with pytest.raises(importer.FileError, match="mixed encodings"):
        read_workbook(b"\xef\xbb\xbf" + head.encode() + gbk, "学校.csv")  # a UTF-8 mark on GBK text
    for content in (head.encode() + utf8, head.encode("gbk") + gbk, b"\xef\xbb\xbf" + head.encode() + utf8):
        book = read_workbook(content, "学校.csv")
        assert book.sheets[0].rows.iloc[0, 1] in ("实验学校", "第二学校")
    # GBK text that happens to be valid UTF-8 but not Chinese (小学校 reads СѧУ) is still GBK
    assert "小学校".encode("gbk").decode() == "СѧУ"
    gbk_head = ",".join(c.zh for c in SHEETS[1].columns) + "\n"
    book = read_workbook((gbk_head + "4213035003,小学校,421303,城区,小学,1,1,1,1,,\n").encode("gbk"), "学校.csv")
    assert book.sheets[0].rows.iloc[0, 1] == "小学校"


def test_a_csv_over_the_row_limit_is_refused_before_it_is_read():
    from api.registry.import_read import MAX_ROWS

    with pytest.raises(importer.FileError, match=f"more than {MAX_ROWS} rows"):
        read_workbook(b"\n" * (MAX_ROWS + 2), "学校.csv")
    book = read_workbook(",".join(c.zh for c in SHEETS[1].columns).encode() + b"\n" * 1000, "学校.csv")
    assert book.sheets[0].rows.empty  # blank lines are no rows


# -- blanks, hidden sheets, invisible text, case ----------------------------------------------------------


def test_a_blank_optional_cell_leaves_the_stored_value(db):
    assert run(db, baoji()).ok
    sheets = baoji()
    sheets["设备"][0]["安装日期"] = None
    sheets["学校"][0]["经度"] = sheets["学校"][0]["纬度"] = None
    for row in sheets["教联体"][:3]:
        row["成立日期"] = None
    sheets["设备"][1]["状态"] = None
    report = run(db, sheets)
    assert report.ok and report.changed == 0, report.changes
    assert str(db.execute("SELECT installed_on FROM device WHERE id = 'B6103020001-01'").fetchone()["installed_on"]) \
        == "2023-09-01"
    assert db.execute("SELECT longitude FROM school WHERE code = '6103020001'").fetchone()["longitude"] is not None
    notes = pd.read_excel(io.BytesIO(importer.write_template()), sheet_name="说明", engine="calamine")
    kept = notes[notes["列 column"].isin(["经度", "纬度", "安装日期", "成立日期"])]
    assert len(kept) == 4 and kept["note"].str.contains("stored value stays").all()


def test_hidden_sheets_are_ignored_with_a_warning(db):
    head = [c.zh for c in SHEETS[1].columns]
    row = ["6103029099", "隐藏学校", "610302", "城区", "小学", 1, 1, 1, 1, None, None]
    visible = [head, ["6103029001", *row[1:]]]
    report = importer.plan(db, read_workbook(_raw_xlsx({"学校": visible, "旧数据": [head, row]}, hidden=("旧数据",)),
                                             "x.xlsx"), ACTOR)
    assert report.ok and report.ignored_sheets == ["旧数据"] and report.rows == {"schools": 1}, report.errors
    assert [(w.sheet, w.reason_en) for w in report.warnings] == [
        ("旧数据", "the hidden sheet '旧数据' was not imported (unhide it to import it)")]


def test_invisible_characters_and_keys_differing_only_by_case_are_errors(db, registry, tmp_path):
    registry.area("610000", "610300", "610302", names=("陕西省", "宝鸡市", "渭滨区"))
    registry.user("admin", "province", "610000", role="admin")
    sheets = baoji()
    del sheets["区划"]
    sheets["学校"] = sheets["学校"][:2]
    sheets["学校"][0]["学校名称"] = "\u200b"  # nothing visible: blank
    sheets["学校"][1]["学校名称"] = "\u202e学小验实"  # reads backwards
    sheets["设备"] = sheets["设备"][:3]
    sheets["设备"][1]["设备编号"] = sheets["设备"][0]["设备编号"].lower()
    sheets["教联体"] = sheets["教联体"][:1]
    sheets["用户"] = [dict(sheets["用户"][1], 用户名="Admin")]
    report = run(db, sheets, dry_run=True)
    assert errors_at(report) == {("学校", 2, "学校名称"), ("学校", 3, "学校名称"), ("设备", 2, "设备编号"),
                                 ("设备", 3, "设备编号"), ("用户", 2, "用户名")}, report.errors
    reasons = {(e.sheet, e.row): e.reason_en for e in report.errors}
    assert reasons[("学校", 2)] == "required" and "invisible" in reasons[("学校", 3)]
    assert "only by case from row 2" in reasons[("设备", 3)] and "only by case from 'admin'" in reasons[("用户", 2)]
    sheets = baoji()
    assert run(db, sheets).ok
    again = {"设备": [dict(sheets["设备"][0], 设备编号="b6103020001-01")], "教联体": [
        dict(r, 教联体编号="c610305001") for r in sheets["教联体"][3:]]}
    assert errors_at(run(db, again, dry_run=True)) == {("设备", 2, "设备编号"), ("教联体", 2, "教联体编号")}
    # a NUL in a CSV's key: an error at its row and column, nothing sent to the database
    rows = [dict(r, 教联体编号="C\x00") for r in sheets["教联体"][3:]]
    csv_files({"教联体": rows}, tmp_path / "nul")
    report = importer.apply(db, read_workbook(tmp_path / "nul"), ACTOR)
    assert errors_at(report) == {("教联体", 2, "教联体编号"), ("教联体", 3, "教联体编号")}
    assert all("\x00" not in e.reason_zh for e in report.errors)
