"""Pure tests of the cockpit's figures, formatting, scope helpers and exports (no browser)."""

import csv
import io

import dash
import pytest

from core.settings import platform_settings
from dashboard import api_client, device_figures, equity_figures, figures, lesson_figures
from dashboard.app import create_app, nav_links
from dashboard.commands import command_body
from dashboard.export import fetch_export, rows_file
from dashboard.i18n import fmt_count, fmt_gap, fmt_rate, fmt_time, fmt_value, t
from dashboard.page import page_callback
from dashboard.scope import breadcrumb, carry, requested_scope
from dashboard.strings import STRINGS

CATALOGUE_RATE = {"key": "online_rate", "zh": "在线率", "en": "Online rate", "unit": "ratio", "better": "higher"}


def child(code: str, name: str, online: int, devices: int) -> dict:
    return {"level": "city", "code": code, "name": name,
            "availability": {"devices": devices, "online": online, "online_rate": online / devices if devices else None,
                             "by_kind": []}}


@pytest.mark.parametrize(("n", "lang", "text"), [
    (None, "zh", "—"), (0, "zh", "0"), (9_999, "zh", "9,999"), (12_345, "zh", "1.2万"),
    (215_433, "zh", "21.5万"), (150_000_000, "zh", "1.50亿"), (12_345, "en", "12,345"),
])
def test_counts_the_chinese_way(n, lang, text):
    assert fmt_count(n, lang) == text


def test_values_in_their_units():
    assert fmt_rate(0.9523) == "95.2%"
    assert fmt_value(0.5, "ratio") == "50.0%"
    assert fmt_value(2.815, "hours", "zh") == "2.81 小时"
    assert fmt_value(2.815, "hours", "en") == "2.81 h"
    assert fmt_value(34_000, "count", "zh") == "3.4万"
    assert fmt_value(None, "ms") == "—"
    assert fmt_gap(-0.01, "ratio") == "—" and fmt_gap(0.0914, "ratio") == "9.1%"


def test_api_times_are_shown_in_shanghai_time():
    assert fmt_time("2026-11-25T01:22:23.408792Z") == "2026-11-25 09:22"
    assert fmt_time("2026-11-24T23:30:00+00:00", seconds=True) == "2026-11-25 07:30:00"
    assert fmt_time("2026-11-24T16:00:00") == "2026-11-25 00:00"  # naive means UTC
    assert fmt_time(None) == "—"


def test_times_follow_the_platforms_time_zone(monkeypatch):
    monkeypatch.setenv("COCKPIT_TIMEZONE", "Asia/Urumqi")
    platform_settings.cache_clear()
    try:
        assert fmt_time("2026-11-25T01:22:23Z") == "2026-11-25 07:22"
    finally:
        monkeypatch.delenv("COCKPIT_TIMEZONE")
        platform_settings.cache_clear()
    assert fmt_time("2026-11-25T01:22:23Z") == "2026-11-25 09:22"


def test_every_word_exists_in_both_languages():
    assert all(set(entry) == {"zh", "en"} and all(entry.values()) for entry in STRINGS.values())
    assert t("title", "en") == "Education Technology Cockpit"
    assert t("no.such.key", "en") == "no.such.key"


def test_rates_are_coloured_by_the_bands_the_api_serves():
    online = figures.bands_of({"good": 0.95, "fair": 0.85})
    assert [figures.rate_colour(r, online) for r in (0.95, 0.9, 0.8, None)] == [
        figures.GOOD, figures.FAIR, figures.POOR, figures.NONE]
    opening = figures.bands_of({"good": 0.90, "fair": 0.75})
    assert figures.rate_colour(0.9, opening) == figures.GOOD
    assert figures.GRADE_STATUS[opening.grade(0.8)] == "behind"
    assert figures.rate_colour(0.5, figures.bands_of(None)) == figures.NONE  # no bands served: neutral


def test_empty_data_gives_a_chart_that_says_so():
    for fig in (figures.trend_figure([], CATALOGUE_RATE, "趋势", "zh"),
                equity_figures.composite_figure([], "均衡", "zh"), lesson_figures.weekly_figure([], "周", "en")):
        assert fig.layout.annotations[0].text in (t("empty", "zh"), t("empty", "en"))
        assert fig.data == ()


def test_trend_is_drawn_in_local_time_and_percent():
    points = [{"bucket": "2026-11-24T23:00:00Z", "value": 0.88}, {"bucket": "2026-11-25T00:00:00Z", "value": None},
              {"bucket": "2026-11-25T01:00:00Z", "value": 0.9}]
    fig = figures.trend_figure(points, CATALOGUE_RATE, "在线率", "zh")
    assert list(fig.data[0].x) == ["2026-11-25 07:00", "2026-11-25 08:00", "2026-11-25 09:00"]
    assert list(fig.data[0].y) == [88.0, None, 90.0]  # an hour without data is a gap in the line, not 0
    assert fig.data[0].connectgaps is False
    assert fig.data[1].text == ("90.0%",)


def test_treemap_sizes_by_devices_and_colours_by_the_chosen_figure():
    children = [{"level": "county", "code": c, "name": n, "figures": {"devices": {"value": d}, "online_rate": {"value": v}}}
                for c, n, d, v in (("1", "甲", 40, 1.0), ("2", "乙", 10, 0.5), ("3", "丙", 0, None))]
    tree = figures.treemap_figure(children, "online_rate", CATALOGUE_RATE, "分布", "zh").data[0]
    assert list(tree.values) == [40, 10, 1]
    assert list(tree.text) == ["100.0%", "50.0%", "—"]
    assert (tree.marker.cmin, tree.marker.cmax) == (0.5, 1.0)
    assert figures.colour_range([1.0, 1.0], "ratio", "higher") == (0.8, 1.0)  # all at 100% is green, not mid
    assert figures.colour_range([3.0, 3.0], "count", "lower") == (2.0, 4.0)


def _county(name: str, primary: float | None, junior: float | None, schools: int = 12) -> dict:
    groups = [{"group": g, "schools": schools, "students": 900, "composite_cv": cv, "bar": bar, "passes": cv <= bar,
               "indicators": [{"indicator": "online_rate", "schools": schools, "mean": 0.9, "cv": cv}]}
              for g, cv, bar in (("primary", primary, 0.5), ("junior", junior, 0.45)) if cv is not None]
    return {"level": "county", "code": name, "name": name, "groups": groups}


def test_equity_shows_the_worst_counties_against_both_bars():
    counties = [_county("甲", 0.2, 0.1), _county("乙", 0.6, None), _county("丙", 0.3, 0.5)]
    assert [c["name"] for c in equity_figures.worst_counties(counties, 2)] == ["乙", "丙"]
    fig = equity_figures.composite_figure(counties, "综合差异系数", "zh")
    assert sorted(s.y0 for s in fig.layout.shapes) == [0.45, 0.5]
    assert list(fig.data[0].x) == ["乙", "丙", "甲"]
    heat = equity_figures.indicators_figure(counties, "分项", "zh").data[0]
    assert list(heat.y)[0] == "乙 · 小学"


def test_locale_gap_is_scaled_to_the_best_locale():
    gap = [{"indicator": "remote_lessons_per_class", "urban": 0.0, "town": 0.5, "rural": 1.0, "rural_to_urban": None},
           {"indicator": "online_rate", "urban": None, "town": None, "rural": None, "rural_to_urban": None}]
    fig = equity_figures.gap_figure(gap, "城乡差距", "zh")
    assert [list(bar.y) for bar in fig.data] == [[0.0], [50.0], [100.0]]
    assert list(fig.data[2].text) == ["1.00"]


def test_lesson_and_community_figures():
    weeks = [{"week": "2026-W47", "sessions_past": 10, "sessions_held": 8, "sessions_interrupted": 1,
              "sessions_missed": 1, "opening_rate": 0.8}, {"week": "2026-W48", "sessions_past": 0, "sessions_held": 0,
                                                          "sessions_interrupted": 0, "sessions_missed": 0,
                                                          "opening_rate": None}]
    fig = lesson_figures.weekly_figure(weeks, "周", "zh")
    assert list(fig.data[0].x) == ["2026-W47"] and list(fig.data[3].y) == [80.0]
    children = [{"level": "county", "code": "1", "name": "甲", "figures": {"coverage_rate": 0.6}}]
    goals = [{"value": 0.7, "comparator": ">=", "deadline": "2024-12-31", "status": "missed", "gap": 0.1},
             {"value": 0.8, "comparator": ">=", "deadline": "2025-12-31", "status": "missed", "gap": 0.2}]
    coverage = lesson_figures.coverage_figure(children, goals, "入体率", "zh")
    assert sorted(s.y0 for s in coverage.layout.shapes) == [70.0, 80.0]
    unset = lesson_figures.coverage_figure(children, [], "入体率", "zh")  # no target: no line, and it says so
    assert unset.layout.shapes == () and [a.name for a in unset.layout.annotations] == ["no_target"]
    ring = lesson_figures.community_kinds_figure({"merged": 2, "co_built": 0, "mixed": 1}, "类型", "zh").data[0]
    assert list(ring.labels) == ["融合型", "融合+共建"]


def test_device_history_plots_the_readings_of_its_kind():
    readings = [{"time": "2026-11-25T01:00:00Z", "cpu_temp_c": 50.0, "disk_used_pct": 60.0},
                {"time": "2026-11-25T01:10:00Z", "cpu_temp_c": 55.0, "disk_used_pct": 61.0}]
    fig = device_figures.history_figure(readings, "board", "读数", "zh")
    assert [d.name for d in fig.data] == ["CPU温度(℃)", "磁盘占用(%)"]  # named, with the unit
    assert list(fig.data[0].x)[0] == "2026-11-25 09:00:00"
    assert device_figures.history_figure([], "board", "读数", "zh").data == ()


def test_scope_comes_from_the_url_else_the_users_own():
    session = {"user": {"scope_level": "city", "scope_code": "421300"}}
    assert requested_scope("?level=county&code=421303", session) == ("county", "421303")
    assert requested_scope("", session) == ("city", "421300")
    assert requested_scope("?level=planet&code=1", session) == ("city", "421300")
    assert carry("/equity", "?level=county&code=421303&id=x") == "/equity?level=county&code=421303"
    assert carry("/equity", None) == "/equity"


def test_breadcrumb_starts_at_the_users_own_level():
    scope = {"name": "曾都区", "parents": [{"level": "province", "code": "420000", "name": "湖北省"},
                                          {"level": "city", "code": "421300", "name": "随州市"}]}
    crumbs = breadcrumb(scope, {"scope_level": "city", "scope_code": "421300"}, "/targets", "targets")
    links = [c for c in crumbs if getattr(c, "href", None)]
    assert [(c.children, c.href) for c in links] == [("随州市", "/targets?level=city&code=421300")]
    assert crumbs[-1].children == "曾都区"


@pytest.fixture(scope="module")
def page_registry():
    """Dash's page registry as the cockpit fills it: creating the app registers its pages."""
    if not any(p.get("nav") for p in dash.page_registry.values()):
        create_app()
    return dash.page_registry


def test_navigation_is_the_page_registry_in_order(page_registry):
    every_route = frozenset(p["api_route"] for p in page_registry.values() if p.get("api_route"))
    links = nav_links("/", None, "zh", every_route)
    assert [(link.id, link.children, link.href) for link in links] == [
        ("app-nav-overview", "运行监测", "/"), ("app-nav-map", "地图", "/map"), ("app-nav-equity", "均衡发展", "/equity"),
        ("app-nav-targets", "目标调度", "/targets"), ("app-nav-devices", "设备清单", "/devices"),
        ("app-nav-lessons", "三个课堂", "/lessons"), ("app-nav-communities", "教联体", "/communities"),
        ("app-nav-patrol", "智能巡检", "/patrol"),
        ("app-nav-inspection", "智能巡课", "/inspection")]  # the device and login pages are not in the navigation
    assert [link.className for link in links] == ["active"] + [""] * (len(links) - 1)


def test_navigation_offers_only_pages_whose_routes_the_api_serves(page_registry):
    available = frozenset({"/api/v1/scopes/{level}/{code}/overview", "/api/v1/scopes/{level}/{code}/equity"})
    links = nav_links("/equity", "?level=city&code=421300", "en", available)
    assert [(link.children, link.href, link.className) for link in links] == [
        ("Operations", "/?level=city&code=421300", ""), ("Equity", "/equity?level=city&code=421300", "active")]


def test_page_callbacks_share_one_opening():
    @page_callback("x-error", lambda box, lang, **_: (lang, box))
    def refresh(search, lang, session):
        if search == "refused":
            raise api_client.ApiError(404, "404: no such scope")
        return lang, session["token"]

    assert refresh("", None, {"token": "tok"}) == ("zh", "tok")
    assert refresh("", "en", {"token": "tok"}) == ("en", "tok")
    with pytest.raises(dash.exceptions.PreventUpdate):
        refresh("", "en", None)
    lang, box = refresh("refused", None, {"token": "tok"})
    assert lang == "zh" and box.id == "x-error" and box.title == "404: no such scope"  # the API's words: a tooltip
    assert box.children[0].children == t("error.404") + "(404)"
    assert (box.children[-1].href, box.children[-1].children) == ("/", "返回运行监测")

    @page_callback(needs_session=False)
    def header(lang, session):
        return lang, session

    assert header(None, None) == ("zh", None)


def test_command_bodies_carry_only_their_own_parameters():
    assert command_body("reboot", "x", "07:00", "17:00") == {"name": "reboot", "params": {}}
    assert command_body("notice", "今晚维护", None, None) == {"name": "notice", "params": {"text": "今晚维护"}}
    assert command_body("power_schedule", None, "07:30", "17:30")["params"] == {"on": "07:30", "off": "17:30"}


def test_local_exports_write_csv_with_bom_and_xlsx():
    rows = [{"county": "曾都区", "composite_cv": 0.47}, {"county": "随县", "composite_cv": 0.6}]
    data = rows_file(rows, "csv")
    assert data.startswith("\ufeff".encode())
    assert list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))[1] == {"county": "随县", "composite_cv": "0.6"}
    assert rows_file(rows, "xlsx")[:2] == b"PK"
    assert rows_file([], "csv") == "\ufeff\r\n".encode()


def test_exports_fetch_from_the_api_with_the_format(monkeypatch):
    calls = []
    monkeypatch.setattr("dashboard.api_client.download",
                        lambda token, path, **params: calls.append((token, path, params)) or (b"x", "f.csv"))
    assert fetch_export("tok", "ranking", "/api/v1/scopes/city/1/ranking", "figure=online_rate&limit=10000",
                        "csv") == (b"x", "f.csv")
    assert calls == [("tok", "/api/v1/scopes/city/1/ranking", {"figure": "online_rate", "limit": "10000",
                                                              "format": "csv"})]
