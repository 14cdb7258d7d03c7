"""Figures a manager can trust (no browser): an unfinished hour is not a dip, no data is "—" and never 0,
a coefficient over too few schools is not judged, and the words on the page say what things are."""

import math
import re
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import dash
import pytest

from core.contract import BoardTelemetry, GatewayTelemetry, RecorderTelemetry
from dashboard import api_client, equity_figures, figures, lesson_figures, readings
from dashboard.app import create_app
from dashboard.components import error_box, error_message
from dashboard.export import _equity_rows, fetch_export
from dashboard.i18n import (
    fmt_count,
    fmt_duration,
    fmt_number,
    fmt_rate,
    fmt_text,
    fmt_value,
    ratio,
    t,
)
from dashboard.page import page_callback
from dashboard.strings import STRINGS

RATE = {"key": "online_rate", "zh": "在线率", "en": "Online rate", "unit": "ratio", "better": "higher"}
NOW = datetime(2026, 11, 25, 3, 7, tzinfo=UTC)  # 11:07 in the schools' time: seven minutes into the hour


@pytest.fixture(scope="module")
def pages():
    """The cockpit's page modules as Dash imports them (pages.<name>), once the app has registered them."""
    if "pages.patrol" not in sys.modules:
        create_app()
    return {name: sys.modules[f"pages.{name}"] for name in ("patrol", "equity", "device", "not_found_404")}


# 1. The current, unfinished bucket is drawn as unfinished, never as a dip

def _hours(*values: float | None) -> list[dict]:
    """Hourly points ending with the hour NOW is in."""
    return [{"bucket": f"2026-11-25T{3 - len(values) + 1 + i:02d}:00:00Z", "value": v, "num": None, "den": None}
            for i, v in enumerate(values)]


def test_the_current_hour_is_not_a_point_of_the_line():
    fig = figures.trend_figure(_hours(0.97, 0.98, 0.99, 0.05), RATE, "在线率", "zh", bucket="hour", now=NOW)
    line, latest = fig.data[0], fig.data[1]
    assert list(line.x) == ["2026-11-25 08:00", "2026-11-25 09:00", "2026-11-25 10:00"]  # 11:00 is not on it
    assert list(line.y) == pytest.approx([97.0, 98.0, 99.0])
    assert 5.0 not in [y for trace in fig.data for y in (trace.y or ())]  # the 5 % of seven minutes is drawn nowhere
    assert latest.text == ("99.0%",)  # the label is the last complete hour
    band = [s for s in fig.layout.shapes if s.name == "in_progress"]
    assert [(s.x0, s.x1) for s in band] == [("2026-11-25 11:00", "2026-11-25 12:00")]
    label = next(a for a in fig.layout.annotations if a.name == "in_progress")
    assert label.text == "进行中" and label.hovertext == t("trend.in_progress.hour")


def test_the_in_progress_label_follows_the_language_and_the_bucket():
    days = [{"bucket": "2026-11-23T16:00:00Z", "value": 0.97}, {"bucket": "2026-11-24T16:00:00Z", "value": 0.4}]
    fig = figures.trend_figure(days, RATE, "Online rate", "en", bucket="day", now=NOW)
    assert list(fig.data[0].y) == pytest.approx([97.0])
    label = next(a for a in fig.layout.annotations if a.name == "in_progress")
    assert (label.text, label.hovertext) == ("In progress", t("trend.in_progress.day", "en"))


def test_the_apis_complete_flag_wins_over_the_clock():
    points = [{"bucket": "2026-11-25T01:00:00Z", "value": 0.9, "complete": True},
              {"bucket": "2026-11-25T02:00:00Z", "value": 0.3, "complete": False}]
    fig = figures.trend_figure(points, RATE, "在线率", "zh", bucket="hour", now=datetime(2030, 1, 1, tzinfo=UTC))
    assert list(fig.data[0].y) == pytest.approx([90.0])
    assert figures.in_progress({"bucket": "2026-11-25T03:00:00Z", "complete": True}, "hour", NOW) is False


def test_finished_hours_are_all_drawn():
    fig = figures.trend_figure(_hours(0.97, 0.98), RATE, "在线率", "zh", bucket="hour",
                               now=datetime(2026, 11, 25, 5, 0, tzinfo=UTC))
    assert len(fig.data[0].x) == 2 and not [s for s in fig.layout.shapes if s.name == "in_progress"]


def test_a_trend_with_only_the_current_hour_says_there_is_no_data_yet():
    fig = figures.trend_figure(_hours(0.05), RATE, "在线率", "zh", bucket="hour", now=NOW)
    assert fig.data == () and fig.layout.annotations[0].text == t("empty")


def test_the_week_in_progress_is_marked_in_the_lessons_chart():
    weeks = [{"week": f"2026-W{n}", "week_start": start, "sessions_past": past, "sessions_held": held,
              "sessions_interrupted": 0, "sessions_missed": past - held, "opening_rate": held / past}
             for n, start, past, held in ((47, "2026-11-16", 40, 36), (48, "2026-11-23", 6, 5))]
    fig = lesson_figures.weekly_figure(weeks, "周", "zh", today=date(2026, 11, 25))
    assert list(fig.data[0].marker.opacity) == [1.0, 0.45]
    assert list(fig.data[3].marker.symbol) == ["circle", "circle-open"]
    assert [a.text for a in fig.layout.annotations if a.name == "in_progress"] == ["进行中"]
    assert lesson_figures.week_in_progress({"week_start": "2026-11-16"}, date(2026, 11, 25)) is False
    assert lesson_figures.week_in_progress({"week_start": "2026-11-23", "complete": True}, date(2026, 11, 25)) is False


# 2. "No data" is "—", never 0

@pytest.mark.parametrize("nothing", [None, float("nan"), float("inf"), -math.inf])
def test_no_data_is_a_dash_in_every_formatter(nothing):
    assert fmt_count(nothing) == fmt_rate(nothing) == fmt_number(nothing) == fmt_duration(nothing) == "—"
    assert {fmt_value(nothing, unit) for unit in ("ratio", "percent", "count", "hours", "ms", "mbps", "")} == {"—"}
    assert fmt_text(nothing) == fmt_text(None, "") == "—"


def test_a_ratio_over_nothing_is_no_data():
    assert ratio(3, 0) is None and ratio(None, 4) is None and ratio(3, None) is None
    assert ratio(0, 4) == 0.0  # zero over something is a real zero
    assert fmt_rate(ratio(0, 0)) == "—" and fmt_rate(ratio(0, 4)) == "0.0%"


def test_durations_in_words():
    assert fmt_duration(20) == "不足 1 分钟" and fmt_duration(20, "en") == "under 1 min"
    assert fmt_duration(0) == "不足 1 分钟"  # resolved at once is not "0 分钟"
    assert fmt_duration(600) == "10 分钟" and fmt_duration(3 * 3600, "en") == "3.0 h"


@pytest.mark.parametrize(("times", "mttr", "note"), [
    ([], "—", None),  # no alert fired in 30 days
    ([{"scope_code": "1", "fired": 4, "acknowledged": 0, "resolved": 0, "mtta_s": None, "mttr_s": None}], "—", None),
    ([{"scope_code": "1", "fired": 4, "acknowledged": 0, "resolved": 0, "mtta_s": 0.0, "mttr_s": 0.0}], "—", None),
    ([{"scope_code": "1", "fired": 4, "acknowledged": 2, "resolved": 3, "mtta_s": 90.0, "mttr_s": 2700.0}], "45 分钟",
     "基于 3 条告警"),
])
def test_mean_time_to_repair_without_data_is_a_dash(pages, times, mttr, note):
    summary = {"open": 0, "by_severity": {"critical": 0, "major": 0, "warning": 0, "info": 0}, "inhibited": 0}
    tiles = {tile.children[1].id: tile for tile in pages["patrol"].patrol_tiles(summary, times, "zh", [])}
    assert tiles["patrol-mttr"].children[1].children == mttr
    notes = [c.children for c in tiles["patrol-mttr"].children[2:]]
    assert notes == ([note] if note else [])


def test_charts_do_not_plot_none_as_zero():
    kinds = lesson_figures.kinds_figure([{"kind": "master", "sessions_past": 3, "sessions_held": 0,
                                          "opening_rate": None}], "分类", "zh").data[0]
    assert list(kinds.y) == [None] and list(kinds.text)[0].startswith("—")

    tree = figures.treemap_figure(
        [{"level": "county", "code": c, "name": c, "figures": {"devices": {"value": 5}, "online_rate": {"value": v}}}
         for c, v in (("a", 0.99), ("b", 0.5), ("c", None))], "online_rate", RATE, "分布", "zh").data[0]
    assert list(tree.text) == ["99.0%", "50.0%", "—"]
    assert list(tree.marker.colors)[2] == figures.NONE  # grey, not painted as the worst child
    assert list(tree.marker.colors)[1] != figures.NONE


# 3. 样本不足: a coefficient over too few schools is not judged

def _group(group: str, cv: float | None, schools: int, **extra) -> dict:
    bar = 0.5 if group == "primary" else 0.45
    return {"group": group, "schools": schools, "students": 300 * schools, "composite_cv": cv, "bar": bar,
            "passes": None if cv is None else cv <= bar,
            "indicators": [{"indicator": "online_rate", "schools": schools, "mean": 0.9, "cv": cv}], **extra}


def _equity(*counties: tuple[str, list[dict]], **extra) -> dict:
    return {"counties": [{"level": "county", "code": code, "name": f"县{code}", "groups": groups}
                         for code, groups in counties], "gap": [], **extra}


def test_a_one_school_county_is_too_few_schools_not_attained(pages):
    data = _equity(("1", [_group("primary", 0.0, 1)]), ("2", [_group("primary", 0.3, 12), _group("junior", 0.6, 8)]))
    assert equity_figures.MIN_SCHOOLS_FOR_CV == 5
    assert equity_figures.verdict(data["counties"][0]["groups"][0], data) == "too_few"
    table = pages["equity"].county_table(data, "zh")[0]
    rows = table.children[1].children
    cells = [[getattr(c.children, "children", c.children) for c in row.children] for row in rows]
    assert [row[5] for row in cells] == ["未达标", "达标", "样本不足"]  # judged worst first, then the unjudged
    one_school = cells[2]
    assert one_school[4] == "—" and one_school[6] == "—"  # no 0.000 "perfectly balanced", no CV of one school
    light = rows[2].children[5].children
    assert light.className == "light light-no_data" and "5" in light.title
    english = pages["equity"].county_table(data, "en")[0].children[1].children
    assert english[2].children[5].children.children == "Too few schools"


def test_the_equity_figures_leave_out_what_is_not_judged():
    data = _equity(("1", [_group("primary", 0.0, 1)]), ("2", [_group("primary", 0.3, 12)]))
    fig = equity_figures.composite_figure(data["counties"], "综合", "zh", data=data)
    assert list(fig.data[0].x) == ["县2"] and list(fig.data[0].y) == [0.3]
    note = next(a for a in fig.layout.annotations if a.name == "too_few")
    assert "1" in note.text and "5" in note.text
    heat = equity_figures.indicators_figure(data["counties"], "分项", "zh", data=data).data[0]
    assert list(heat.y) == ["县2 · 小学"]
    only_small = _equity(("1", [_group("primary", 0.0, 2)]))
    assert equity_figures.composite_figure(only_small["counties"], "综合", "zh", data=only_small).data == ()


def test_the_apis_own_sample_rule_wins():
    assert equity_figures.too_few_schools(_group("primary", 0.2, 3), {"min_schools": 3}) is False
    assert equity_figures.too_few_schools(_group("primary", 0.2, 3, min_schools=2)) is False
    assert equity_figures.too_few_schools(_group("primary", 0.2, 30, judged=False)) is True
    assert equity_figures.too_few_schools(_group("primary", 0.2, 1, judged=True)) is False
    assert equity_figures.verdict(_group("junior", None, 9)) == "no_data"


def test_the_equity_export_does_not_say_a_one_school_county_passes():
    rows = _equity_rows(_equity(("1", [_group("primary", 0.0, 1)]), ("2", [_group("primary", 0.3, 12)])))
    assert [(r["county_code"], r["judged"], r["passes"]) for r in rows] == [("1", False, None), ("2", True, True)]


# 4. Words a manager reads

def _alert(alert_id: int, state: str) -> dict:
    return {"id": alert_id, "state": state, "severity": "major", "school_name": "一中", "room": None,
            "rule_title": "设备离线", "first_seen": "2026-11-25T01:00:00+00:00", "count": 2}


def test_alert_states_are_named_for_what_they_are(pages):
    assert t("alert.state.pending").startswith("观察中") and "未告警" in t("alert.state.pending")
    assert t("alert.state.firing").startswith("告警中") and "待确认" in t("alert.state.firing")
    assert "待确认" not in t("alert.state.pending")  # pending is not waiting for anyone: no one was told yet
    assert t("alert.state.pending", "en").startswith("Pending") and t("alert.state.firing", "en").startswith("Firing")
    row = pages["patrol"].alert_rows([_alert(7, "firing")], "zh", acting=False)[0]
    assert row[1] == "告警中(待确认)" and row[3] == "—"


def test_the_patrol_tiles_count_what_the_list_shows(pages, monkeypatch):
    patrol = pages["patrol"]
    assert patrol.LISTED_STATES == ("firing", "acknowledged")
    listed = [_alert(1, "firing"), _alert(2, "firing"), _alert(3, "acknowledged")]
    summary = {"open": 3, "by_severity": {"critical": 1, "major": 2, "warning": 0, "info": 0}, "inhibited": 4}
    tiles = {tile.children[1].id: tile for tile in patrol.patrol_tiles(summary, [], "zh", listed)}
    assert tiles["patrol-open"].children[1].children == "3"
    assert tiles["patrol-open"].children[2].children == "告警中 2 · 已确认 1"
    assert tiles["patrol-open"].children[0].children == "未恢复告警"
    assert tiles["patrol-inhibited"].children[2].children == t("patrol.not_listed")  # counted, and said not listed
    assert "patrol-pending" not in tiles  # only the API can count pending alerts: it does not send them yet
    assert patrol.alerts_note(summary, listed, "zh") is None

    with_states = {**summary, "by_state": {"pending": 5, "firing": 2, "acknowledged": 1}}
    tiles = {tile.children[1].id: tile for tile in patrol.patrol_tiles(with_states, [], "en", None)}
    assert tiles["patrol-pending"].children[1].children == "5"
    assert tiles["patrol-open"].children[2].children == "Firing 2 · acknowledged 1"

    with_info = {**summary, "open": 4, "by_severity": {**summary["by_severity"], "info": 1}}
    tiles = {tile.children[1].id for tile in patrol.patrol_tiles(with_info, [], "zh", listed)}
    assert {"patrol-critical", "patrol-major", "patrol-warning", "patrol-info"} <= tiles  # they add up to the open
    assert patrol.mean_time({"mttr_s": 600.0}, "mttr_s", "resolved", "zh") == ("10 分钟", None)  # no count sent

    many = {**summary, "open": 350}
    assert patrol.state_counts(many, [{"state": "firing"}] * patrol.ALERT_ROWS) is None  # a cut list is no count
    assert "350" in patrol.alerts_note(many, [{"state": "firing"}] * patrol.ALERT_ROWS, "zh").children

    base, calls = "/api/v1/scopes/county/421303", []
    answers = {base: {"name": "曾都区", "parents": []}, f"{base}/alerts/summary": summary,
               f"{base}/response-times": [], f"{base}/alerts": listed}

    def get(token, path, **params):
        calls.append((path, params))
        return answers.get(path, [])

    monkeypatch.setattr(api_client, "get", get)
    session = {"token": "tok", "user": {"role": "viewer", "scope_level": "county", "scope_code": "421303"}}
    out = patrol.refresh(0, 0, "", "zh", session)
    assert dict(calls)[f"{base}/alerts"]["state"] == ["firing", "acknowledged"]  # what the summary counts
    export = out[3][0].id
    assert export["query"] == "state=firing&state=acknowledged&limit=5000"


def test_an_export_keeps_a_repeated_query_key(monkeypatch):
    calls = []
    monkeypatch.setattr(api_client, "download", lambda token, path, **params: calls.append(params) or (b"", "a.csv"))
    fetch_export("tok", "alerts", "/x", "state=firing&state=acknowledged&limit=5000", "csv")
    assert calls == [{"state": ["firing", "acknowledged"], "limit": "5000", "format": "csv"}]


@pytest.mark.parametrize(("status", "zh", "en"), [
    (401, "登录已过期,请重新登录(401)", "Your login has expired: please log in again (401)"),
    (403, "没有权限查看或执行此操作(403)", "You are not allowed to see or do this (403)"),
    (404, t("error.404") + "(404)", t("error.404", "en") + " (404)"),
    (503, "数据服务出错,请稍后再试(503)", "The data service failed: try again shortly (503)"),
])
def test_errors_are_said_in_words(status, zh, en):
    exc = api_client.ApiError(status, f"{status}: something")
    assert error_message(exc, "zh") == zh and error_message(exc, "en") == en


def test_an_error_box_has_a_way_back():
    box = error_box(api_client.ApiError(404, "404: not found"), "x", "en")
    back = box.children[-1]
    assert (back.href, back.children, back.id) == ("/", "Back to the overview", "x-back")
    assert "not found" not in str(box.children)  # the API's own words are for operators: the tooltip
    expired = error_box(api_client.ApiError(401, "401: token expired"), "x", "zh").children[-1]
    assert (expired.href, expired.children) == ("/login", "登录")
    invalid = error_box(api_client.ApiError(422, "422: days must be ≤ 366"), "x", "zh")
    assert invalid.children[1].children == " 422: days must be ≤ 366"  # what to change is worth showing
    assert len(error_box(api_client.ApiError(403, "403"), "x", "zh", back=False).children) == 1


def test_a_page_that_breaks_says_so_in_words():
    @page_callback("x-error", lambda box, **_: box)
    def refresh(lang, session):
        raise KeyError("value")

    box = refresh("zh", {"token": "tok"})
    assert box.children[0].children == t("error.internal") and box.children[-1].href == "/"

    @page_callback("x-error", lambda box, **_: box)
    def nothing_to_do(lang, session):
        raise dash.exceptions.PreventUpdate

    with pytest.raises(dash.exceptions.PreventUpdate):
        nothing_to_do("zh", {"token": "tok"})


def test_the_not_found_page_says_so_with_a_way_back(pages):
    page = pages["not_found_404"]
    box = page.layout().children[0]
    title, text, back = box.children
    assert (title.children, back.href, back.children) == ("页面不存在", "/", "返回运行监测")
    assert page.layout(level="city", code="421300").children[0].children[2].href == "/?level=city&code=421300"
    assert page.layout(level="planet", code="1").children[0].children[2].href == "/"
    assert page.words("en") == ("Page not found", t("notfound.text", "en"), "Back to the overview")
    assert any(p["module"] == "pages.not_found_404" for p in dash.page_registry.values())


def _luminance(colour: str) -> float:
    channels = [int(colour.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """The WCAG contrast ratio of two #rrggbb colours."""
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_dropdown_options_are_readable_on_the_dark_theme():
    css = (Path(__file__).parents[2] / "dashboard" / "assets" / "cockpit.css").read_text()
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    rules: dict[str, str] = {}  # each selector's declarations, every rule naming it taken together
    for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", css):
        for selector in selectors.split(","):
            rules[selector.strip()] = rules.get(selector.strip(), "") + ";" + body

    def colour(selector: str, prop: str) -> str:
        return re.search(rf"(?:^|;|\s){prop}:\s*(#[0-9a-fA-F]{{6}})", rules[selector]).group(1)

    for option in (".dash-dropdown-option", ".dash-options-list-option"):  # the menu, and the highlighted option
        assert contrast(colour(option, "color"), colour(option, "background")) >= 7
        hover = f"{option}:hover"
        assert contrast(colour(hover, "color"), colour(hover, "background")) >= 7
    # Dash draws its menus with its own variables (dark text on white): they are set for the dark theme
    body = rules["body"]
    text = re.search(r"--Dash-Text-Strong:\s*(#[0-9a-fA-F]{6})", body).group(1)
    fill = re.search(r"--Dash-Fill-Inverse-Strong:\s*(#[0-9a-fA-F]{6})", body).group(1)
    assert contrast(text, fill) >= 7


# the device page's readings

CONTRACT_READINGS = {name for model in (BoardTelemetry, RecorderTelemetry, GatewayTelemetry)
                     for name in model.model_fields} - {"v", "ts", "seq", "kind"}
TABLE_COLUMNS = {"cameras_total", "cameras_online", "clock_skewed"}  # what the telemetry tables add


@pytest.mark.parametrize("key", sorted(CONTRACT_READINGS | TABLE_COLUMNS))
def test_every_reading_has_a_name_in_both_languages(key):
    assert key in readings.READINGS
    assert {"zh", "en"} <= set(STRINGS[f"reading.{key}"])
    assert "reading." not in readings.label(key, "zh") and "reading." not in readings.label(key, "en")


def test_readings_are_shown_with_their_units():
    shown = {k: readings.fmt_reading(k, v, "zh") for k, v in {
        "power_on": True, "screen_on": False, "active_use_s": 36_000, "cpu_temp_c": 55.04, "cpu_load": 0.45,
        "disk_used_pct": 61.0, "error_codes": [], "bitrate_kbps": 3850.0, "storage_free_gb": 120.5,
        "latency_ms": 12.3, "loss_pct": 0.5, "rx_mbps": 300.0, "dropped_frames": 12,
        "cameras": [{"role": "teacher", "online": True}, {"role": "students", "online": False}],
        "foreground_app": "希沃白板5", "lesson_id": None}.items()}
    assert shown == {"power_on": "是", "screen_on": "否", "active_use_s": "10.0 小时", "cpu_temp_c": "55.0℃",
                     "cpu_load": "45.0%", "disk_used_pct": "61.0%", "error_codes": "无", "bitrate_kbps": "3,850 kbps",
                     "storage_free_gb": "120.5 GB", "latency_ms": "12.3 ms", "loss_pct": "0.50%",
                     "rx_mbps": "300.0 Mbit/s", "dropped_frames": "12 帧", "cameras": "1 / 2 在线",
                     "foreground_app": "希沃白板5", "lesson_id": "—"}
    assert readings.fmt_reading("active_use_s", 36_000, "en") == "10.0 h"
    assert readings.label("cpu_temp_c", "en", with_unit=True) == "CPU temperature (℃)"
    assert readings.label("brand_new_sensor", "zh") == "brand_new_sensor"  # unknown: its own name, not reading.x


def test_the_device_page_lists_named_readings(pages):
    device = {"kind": "board", "school_name": "一中", "county_name": "曾都区", "room": None, "vendor": "希沃",
              "model": None, "installed_on": None, "online": True, "last_seen": "2026-11-25T01:00:00Z",
              "in_use": True, "recording": None, "streaming": None,
              "last_values": {"kind": "board", "power_on": True, "cpu_temp_c": 50.0, "active_use_s": 7200}}
    facts = pages["device"].state_list(device, "zh").children
    pairs = dict(zip([f.children for f in facts[::2]], [getattr(f.children, "children", f.children)
                                                        for f in facts[1::2]], strict=True))
    assert pairs["开机"] == "是" and pairs["CPU温度"] == "50.0℃" and pairs["累计使用时长"] == "2.0 小时"
    assert pairs["教室"] == "—" and pairs["厂商/型号"] == "希沃" and pairs["安装日期"] == "—"
    assert not [name for name in pairs if str(name).startswith("reading.")] and "kind" not in pairs
    english = pages["device"].state_list(device, "en").children
    assert "Powered on" in [f.children for f in english[::2]]
    event = {"type": "lesson_start", "lesson_id": "L1", "lesson_role": "main", "detail": {"loss_pct": 3.5}}
    assert pages["device"].event_detail(event, "zh") == "当前课堂: L1 · 主讲; 丢包率: 3.50%"
    assert pages["device"].event_detail({"type": "power_on", "detail": {}}, "zh") == "—"
    assert pages["device"].event_detail({"type": "error", "detail": {"code": "E102"}}, "en") == "Code: E102"
