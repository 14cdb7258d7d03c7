"""The administration pages' pieces, without a browser: request bodies from forms, the rows and their
buttons, credentials shown once, the import's report and its apply guard, every word in both languages,
and the navigation showing the administration to admins only."""

import ast
import base64
import re
import sys
from pathlib import Path

import httpx
import pytest

from dashboard import api_client
from dashboard.app import create_app, nav_links
from dashboard.pages import admin_common
from dashboard.strings import STRINGS

PAGES = Path(admin_common.__file__).parent
MODULES = ("admin", "admin_schools", "admin_devices", "admin_communities", "admin_teams", "admin_import",
           "admin_history")


@pytest.fixture(scope="module")
def pages():
    """The page modules as Dash imports them (pages.<name>), once the app has registered them."""
    if "pages.admin" not in sys.modules:
        create_app()
    return {name: sys.modules[f"pages.{name}"] for name in MODULES}


def test_a_form_becomes_a_body_of_what_was_filled_in():
    form = {"name": "  一中 ", "classes": 0, "latitude": None, "room": "", "webhook_url": "  ", "email": None}
    assert admin_common.body(form) == {"name": "一中", "classes": 0}  # 0 is a value, not "empty"
    # a route cleared on purpose is sent as null (the API clears it), not left out (no change)
    assert admin_common.body(form, keep_empty=("webhook_url", "email")) == {
        "name": "一中", "classes": 0, "webhook_url": None, "email": None}


def test_a_key_is_one_segment_of_the_api_path_whatever_it_holds():
    assert admin_common.part(" zengdu ") == "zengdu"
    assert admin_common.part("a/b?c#d 王") == "a%2Fb%3Fc%23d%20%E7%8E%8B"  # no slash, query or fragment escapes


def test_user_rows_offer_what_the_account_allows(pages):
    rows = pages["admin"].user_rows([
        {"username": "on", "display_name": "甲", "role": "manager", "scope_level": "city", "scope_code": "421300",
         "disabled": False, "must_change_password": True},
        {"username": "off", "display_name": "乙", "role": "viewer", "scope_level": "county", "scope_code": "421303",
         "disabled": True}], "zh")
    active, disabled = rows
    assert active[2] == "管理人员" and "待修改密码" in active[4] and "421300" in active[3]
    toggles = [b.id for row in rows for b in row[5].children if b.id["type"] == "admin-user-toggle"]
    assert toggles == [{"type": "admin-user-toggle", "user": "on", "to": "disable"},
                       {"type": "admin-user-toggle", "user": "off", "to": "enable"}]
    assert disabled[4] == "已停用"


def test_a_generated_password_is_shown_once_and_a_chosen_one_is_not_shown(pages):
    admin = pages["admin"]
    shown = str(admin.created({"username": "wu", "initial_password": "Xk29fLq0pZ"}, "zh"))
    assert "Xk29fLq0pZ" in shown and "仅显示这一次" in shown
    chosen = admin.created({"username": "wu"}, "en")
    assert chosen.className == "notice-ok" and "wu" in str(chosen)
    assert "Q1w2e3r4t5" in str(admin.reset_shown("wu", {"password": "Q1w2e3r4t5"}, "en"))
    assert admin.reset_shown("wu", None, "en").className == "notice-ok"


def test_a_registered_device_shows_its_credentials_and_where_to_connect(pages):
    devices = pages["admin_devices"]
    answer = {"id": "B4213030001-099", "mqtt": {"username": "B4213030001-099", "password": "s3cr3t-derived",
                                                "host": "mqtt.example.org", "port": 8883, "tls": True,
                                                "topic_prefix": "edu/dev/B4213030001-099"}}
    shown = str(devices.registered(answer, "zh"))
    assert all(part in shown for part in ("s3cr3t-derived", "mqtts://mqtt.example.org:8883", "edu/dev/B4213030001-099"))
    assert devices.broker({"host": "10.0.0.5", "port": 1883, "tls": False}) == "mqtt://10.0.0.5:1883"
    assert devices.broker({"host": None, "port": None, "tls": False}) is None  # "—", never "None:None"
    unprovisioned = devices.registered({"id": "B1", "note": "no provisioning secret configured"}, "en")
    assert unprovisioned.className == "notice-ok" and "no provisioning secret" in str(unprovisioned)


def test_device_rows_retire_a_device_in_service_and_return_a_retired_one(pages):
    rows = pages["admin_devices"].device_rows([
        {"id": "B1", "kind": "board", "school_code": "4213030001", "school_name": "一中", "room": "101"},
        {"id": "B2", "kind": "board", "school_code": "4213030001", "retired_at": "2026-01-05T02:00:00Z",
         "retired_reason": "报废"}], "zh")
    kinds = [[b.id["type"] for b in row[-1].children if isinstance(getattr(b, "id", None), dict)] for row in rows]
    assert kinds == [["admin-device-edit", "admin-device-retire"], ["admin-device-edit", "admin-device-return"]]
    assert "报废" in rows[1][6] and rows[0][6] == "—"


def test_the_dry_run_report_names_sheet_row_column_and_reason_in_the_language_chosen(pages):
    imp = pages["admin_import"]
    error = {"sheet": "设备", "row": 7, "column": "学校标识码", "reason_zh": "不是10位数字", "reason_en": "not 10 digits"}
    assert imp.error_rows([error], "zh") == [["设备", "7", "学校标识码", "不是10位数字"]]
    assert imp.error_rows([error], "en")[0][3] == "not 10 digits"
    assert imp.error_rows([{"sheet": "x", "row": 2, "column": None, "reason_zh": "只有中文"}], "en")[0][2:] == [
        "—", "只有中文"]  # the other language rather than nothing


def test_only_a_clean_dry_run_can_be_applied(pages):
    imp = pages["admin_import"]
    assert imp.clean({"ok": True, "dry_run": True, "errors": [], "changes": {}})
    assert not imp.clean({"ok": False, "errors": [{"sheet": "学校", "row": 2}]})
    assert not imp.clean({"ok": True, "errors": [{"sheet": "学校", "row": 2}]})  # ok but rows refused: not clean
    assert not imp.clean({"refused": "413: too large"}) and not imp.clean(None)
    report = {"ok": True, "errors": [], "changes": {"schools": {"created": 1}}, "filename": "a.xlsx"}
    *_, disabled = imp.show_report(report, {"name": "a.xlsx", "contents": "data:;base64,AA=="}, "zh")
    assert disabled is False
    *_, disabled = imp.show_report(report, None, "zh")  # nothing kept to send again
    assert disabled is True
    dirty = {"ok": False, "errors": [{"sheet": "学校", "row": 3, "column": "学段", "reason_zh": "无效", "reason_en": "bad"}]}
    summary, errors, _warnings, disabled = imp.show_report(dirty, {"name": "b.xlsx", "contents": "x"}, "en")
    assert disabled is True and "bad" in str(errors) and "1 errors" in str(summary)


def test_the_changes_table_has_a_column_per_kind_of_change(pages):
    headers, rows = pages["admin_import"].change_rows(
        {"schools": {"created": 2, "moved": 1}, "devices": {"created": 5, "retired": 1}, "novel": {"zapped": 3}}, "zh")
    assert headers == ["类型", "新建", "迁移", "退役", "zapped"]  # a change the cockpit has no word for keeps its name
    assert rows == [["学校", 2, 1, 0, 0], ["设备", 5, 0, 1, 0], ["novel", 0, 0, 0, 3]]


def test_an_upload_is_decoded_or_refused(pages):
    decode = pages["admin_import"].decode_upload
    payload = b"PK\x03\x04 workbook"
    assert decode("data:application/octet-stream;base64," + base64.b64encode(payload).decode()) == payload
    for bad in (None, "", "no comma here", "data:;base64,@@not base64@@"):
        with pytest.raises(ValueError):
            decode(bad)


def test_history_says_what_changed_from_what_to_what(pages):
    history = pages["admin_history"]
    row = {"at": "2026-03-01T01:00:00Z", "entity": "school", "key": "4213030001", "change": "moved",
           "before": {"county_code": "421303", "name": "一中"}, "after": {"county_code": "421321", "name": "一中"},
           "changed_by": "admin", "source": "admin"}
    [cells] = history.history_rows([row], "zh")
    assert cells[1:4] == ["学校", "4213030001", "迁移"] and cells[4] == "county_code: 421303 → 421321"
    assert cells[6] == "管理页面"
    assert history.change_text({"before": None, "after": {"role": "admin", "disabled": False}}) == \
        "role: admin; disabled: false"  # a record created: what it was created with
    assert history.change_text({"before": {"disabled": False}, "after": {"disabled": True}}) == \
        "disabled: false → true"


def test_the_administration_is_in_the_navigation_of_admins_only(pages):
    routes = frozenset({"/api/v1/admin/users", "/api/v1/scopes/{level}/{code}"})
    ids = lambda role: [link.id for link in nav_links("/", "", "zh", routes, role)]  # noqa: E731
    assert "app-nav-admin" in ids("admin")
    assert all("app-nav-admin" not in ids(role) for role in ("manager", "operations", "viewer", None))
    assert "app-nav-admin" not in [link.id for link in nav_links("/", "", "zh", frozenset(), "admin")]  # no API yet


def test_an_api_refusal_keeps_its_reason_and_its_rows():
    def answer(status: int, body) -> httpx.Response:
        return httpx.Response(status, json=body, request=httpx.Request("GET", "http://api/x"))

    with pytest.raises(api_client.ApiError) as caught:
        api_client._raise_for(answer(403, {"detail": "role manager may not administer the registry"}))
    assert str(caught.value) == "403: role manager may not administer the registry" and caught.value.status == 403
    rows = {"detail": "the file has errors", "errors": [{"sheet": "学校", "row": 4, "column": "学段",
                                                          "reason_zh": "无效", "reason_en": "not a stage"}]}
    with pytest.raises(api_client.ApiError) as caught:
        api_client._raise_for(answer(422, rows))
    assert "学校 4 学段 not a stage" in str(caught.value) and caught.value.body == rows
    with pytest.raises(api_client.ApiError) as caught:
        api_client._raise_for(answer(422, ["not", "an", "object"]))
    assert caught.value.status == 422


def _keys_used(source: str) -> set[str]:
    """String constants of a module that look like word keys of the administration."""
    return {node.value for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Constant)
            and isinstance(node.value, str) and re.fullmatch(r"(admin|password|nav)\.[a-z_.]+[a-z_]", node.value)}


def test_every_word_of_the_administration_is_there_in_both_languages(pages):
    sources = [(PAGES / f"{name}.py").read_text() for name in (*MODULES, "admin_common", "login")]
    used = set().union(*map(_keys_used, sources))
    families = {f"admin.role.{r}" for r in admin_common.ROLES} | {f"admin.stage.{s}" for s in admin_common.STAGES} \
        | {f"admin.member.{m}" for m in admin_common.MEMBER_ROLES} \
        | {f"admin.tab.{n}" for n, _ in admin_common.SECTIONS}
    for module in pages.values():
        for f in (*getattr(module, "FIELDS", ()), *getattr(module, "MEMBER_FIELDS", ()),
                  *getattr(module, "SIDE_FIELDS", ())):
            used.add(f.label or f"admin.field.{f.name}")
    missing = sorted(k for k in used | families if k not in STRINGS)
    assert not missing, f"words without an entry: {missing}"
    assert len(used) > 100  # the scan found the pages' words, not nothing
    assert all(STRINGS[k]["zh"] and STRINGS[k]["en"] and STRINGS[k]["zh"] != STRINGS[k]["en"]
               for k in used | families if k.startswith("admin.")), "a word left untranslated"


def test_a_download_keeps_the_file_name_the_api_suggests():
    assert api_client.file_name("attachment; filename*=UTF-8''registry-import-template.xlsx") == \
        "registry-import-template.xlsx"
    assert api_client.file_name("attachment; filename=\"a.xlsx\"; filename*=UTF-8''%E8%AE%BE%E5%A4%87.xlsx") == \
        "设备.xlsx"  # the RFC 6266 name, in any language's letters, before the plain one
    assert api_client.file_name('attachment; filename="devices.csv"') == "devices.csv"
    assert api_client.file_name("") == "export" and api_client.file_name("inline", "x.xlsx") == "x.xlsx"


def _ids(component) -> list:
    """Every id in a layout, depth first (a repeated one breaks Dash: two elements answer to one name)."""
    found = [component.id] if getattr(component, "id", None) is not None else []
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if hasattr(child, "to_plotly_json"):
            found += _ids(child)
    return found


@pytest.mark.parametrize("name", MODULES)
def test_every_element_of_a_section_has_an_id_of_its_own(pages, name):
    ids = _ids(pages[name].layout())
    assert len(ids) > 5 and len(ids) == len(set(map(str, ids))), sorted(i for i in ids if ids.count(i) > 1)
    prefix = name.replace("admin_", "admin-") if name != "admin" else "admin-users"
    assert all(str(i).startswith(prefix) for i in ids), "an id without the section's prefix may clash with another page"


def test_a_locked_account_has_an_unlock_button_and_a_community_lists_its_lead_first(pages):
    [row] = pages["admin"].lock_rows([{"username": "zengdu", "failures": 7, "locks": 1, "locked": True,
                                       "locked_until": "2026-03-01T02:00:00Z", "last_failure": "2026-03-01T01:59:00Z"}],
                                     "zh")
    assert row[:3] == ["zengdu", 7, "是"] and row[5].id == {"type": "admin-lock-unlock", "user": "zengdu"}
    members = [{"school_code": "2", "school_name": "二小", "role": "member"},
               {"school_code": "1", "school_name": "一小", "role": "lead"}]
    assert pages["admin_communities"].members_text({"members": members}, "zh") == "一小 (牵头校)、二小 (成员校)"
    assert pages["admin_communities"].members_text({"members": []}, "zh") == "—"
