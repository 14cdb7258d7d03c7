"""The "which ones?" pieces of the pages without a browser: the links that open the schools behind a figure
keep the scope and the period, the schools page asks the API for what its controls say, the session list's
filters and its "N of M", and an alert's opener of its grouped alerts."""

import sys
from urllib.parse import parse_qs, urlsplit

import pytest
from dash import dcc, html
from dash.exceptions import PreventUpdate

from dashboard import api_client
from dashboard.app import create_app
from dashboard.scope import keeping

SUIZHOU = "?level=city&code=421300"
SESSION = {"token": "t", "user": {"scope_level": "province", "scope_code": "420000"}}


@pytest.fixture(scope="module")
def pages():
    """The cockpit's page modules as Dash imports them, once the app has registered them."""
    if "pages.schools" not in sys.modules:
        create_app()
    return {name: sys.modules[f"pages.{name}"] for name in ("overview", "schools", "lessons", "patrol")}


def _query(link) -> dict[str, str]:
    url = urlsplit(link.href)
    return {"path": url.path, **{k: v[0] for k, v in parse_qs(url.query).items()}}


def _links(component) -> list:
    """Every dcc.Link inside a component."""
    found = [component] if isinstance(component, dcc.Link) else []
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list) else [children] if children is not None else []:
        found += _links(child)
    return found


def test_headline_tiles_open_the_schools_behind_each_figure_for_the_period(pages):
    figs = {k: {"value": 1} for k in ("devices", "online_rate", "boards_in_use_now", "recorders_live_now")}
    with keeping(SUIZHOU + "&period=last_month"):
        tiles = pages["overview"].headline_tiles(figs, {"online": 1}, 0, "zh", scope=("city", "421300"))
    links = {link.id: _query(link) for tile in tiles for link in _links(tile)}
    assert set(links) == {f"overview-which-{k}" for k in figs}
    for key, query in links.items():
        assert query == {"path": "/schools", "level": "city", "code": "421300", "period": "last_month",
                         "figure": key.removeprefix("overview-which-")}
    assert not [link for tile in pages["overview"].headline_tiles(figs, {"online": 1}, 0, "zh") for link in
                _links(tile)]  # without the scope: the tiles of before


def test_each_child_above_the_schools_opens_its_schools(pages):
    availability = {"devices": 3, "online": 2, "online_rate": 0.6667}
    cities = [{"level": "city", "code": "421300", "name": "随州市", "availability": availability}]
    with keeping("?period=yesterday"):
        body = pages["overview"].children_table(cities, "zh", None)
    which = [link for link in _links(body) if link.id == "overview-child-which-421300"]
    assert [_query(link) for link in which] == [{"path": "/schools", "level": "city", "code": "421300",
                                                 "period": "yesterday", "figure": "online_rate"}]
    schools = [{"level": "school", "code": "1", "name": "一中", "availability": availability}]
    assert not [link for link in _links(pages["overview"].children_table(schools, "zh", None))
                if "which" in (link.id or "")]  # a school is its own list


@pytest.fixture
def answered(monkeypatch):
    """The API as the schools page sees it: what was asked, and one school answered."""
    calls = []

    def get(token, path, **params):
        calls.append((path, params))
        if path.endswith("/figures"):
            return []
        scope = {"level": "city", "code": "421300", "name": "随州市", "parents": [], "child_level": "county"}
        return {"scope": scope, "figure": {"key": params["figure"], "zh": "在线率", "en": "Online rate",
                                           "unit": "ratio"},
                "order": params["order"], "by": params["by"], "q": params.get("q"), "as_of": "2026-11-25T01:00:00Z",
                "total": 26, "offset": params["offset"], "limit": params["limit"],
                "items": [{"rank": params["offset"] + 1, "code": "4213030001", "name": "一中", "county_code": "421303",
                           "county_name": "曾都区", "city_code": "421300", "city_name": "随州市", "value": 0.5,
                           "num": 5, "den": 10, "previous": 0.4, "change": 0.1}],
                **({"period": {"label": params["period"]}} if "period" in params else {})}

    monkeypatch.setattr(api_client, "get", get)
    return calls


def test_the_schools_page_asks_the_api_for_what_its_controls_say(pages, answered):
    refresh = pages["schools"].refresh
    out = refresh(SUIZHOU + "&period=last_month&figure=boards_unused_share", "zh", 2, "change_best", " 曾都 ", SESSION)
    assert answered[-1] == ("/api/v1/scopes/city/421300/schools", {
        "limit": 25, "offset": 25, "figure": "boards_unused_share", "order": "best", "by": "change", "q": "曾都",
        "period": "last_month"})
    assert out[4] == "第 26–26 所,共 26 所" and out[-2:] == (False, True)  # page 2 of 2
    export = {b.id["fmt"]: parse_qs(b.id["query"]) for b in out[5]}
    assert export["csv"] == {"figure": ["boards_unused_share"], "order": ["best"], "by": ["change"], "q": ["曾都"],
                             "period": ["last_month"]}  # the export holds every match of the same filters
    refresh(SUIZHOU, "en", None, "change_worst", "", SESSION)
    assert answered[-1][1] == {"limit": 25, "offset": 0, "figure": "online_rate", "order": "worst", "by": "value"}


def test_the_schools_table_shows_the_previous_period_only_over_one(pages, answered):
    schools = pages["schools"]
    out = schools.refresh(SUIZHOU + "&period=yesterday", "zh", 1, "worst", "", SESSION)
    table = out[3]
    headings = [th.children for th in table.children[0].children.children]
    assert headings == ["排名", "名称", "学校代码", "区县", "在线率", "上期", "变化", "分子", "分母", "设备"]
    cells = table.children[1].children[0].children
    assert [c.children for c in cells[4:7]] == ["50.0%", "40.0%", "10.0 pp"]
    assert _query(cells[1].children) == {"path": "/", "level": "school", "code": "4213030001", "period": "yesterday"}
    assert _query(cells[-1].children)["path"] == "/devices"
    assert schools.count_label(0, 0, 0, "zh") == "共 0 所"


def test_the_order_and_the_filter_are_kept_in_the_url(pages):
    keep = pages["schools"].keep_list
    assert keep("best", " 曾都 ", SUIZHOU + "&period=yesterday") == SUIZHOU + "&period=yesterday&order=best&q=%E6%9B%BE%E9%83%BD"
    assert keep("worst", "", SUIZHOU + "&order=best&q=x") == SUIZHOU  # the defaults leave the URL
    with pytest.raises(PreventUpdate):
        keep("best", "x", SUIZHOU + "&order=best&q=x")  # already there: no new address, no loop


def test_the_session_list_filters_by_a_day_or_the_period_a_kind_and_a_state(pages):
    filters = pages["lessons"].session_filters
    assert filters(SUIZHOU + "&period=last_week", None, "", "") == {"period": "last_week"}
    assert filters(SUIZHOU + "&period=last_week", "2026-11-02", "master", "missed") == {
        "day_from": "2026-11-02", "day_to": "2026-11-02", "kind": "master", "status": "missed"}  # the day wins
    assert filters(SUIZHOU, None, None, None) == {}  # the API's last 7 days, which it names in its answer


def test_the_session_list_says_which_of_how_many(pages):
    count = pages["lessons"].sessions_count
    page = {"total": 95, "page": 2, "page_size": 30, "items": [{}] * 30, "day_from": "2026-11-01", "day_to": "2026-11-07"}
    assert count(page, "zh") == "第 31–60 场,共 95 场(2026-11-01 至 2026-11-07)"
    assert count({**page, "page": 4, "items": [{}] * 5}, "en") == "91–95 of 95 sessions (2026-11-01 to 2026-11-07)"
    assert count({**page, "total": 0, "items": []}, "zh") == "共 0 场(2026-11-01 至 2026-11-07)"


def test_the_session_list_pages_through_the_api(pages, monkeypatch):
    calls = []

    def get(token, path, **params):
        calls.append((path, params))
        return {"total": 61, "page": params["page"], "page_size": 30, "day_from": "2026-11-01", "day_to": "2026-11-07",
                "items": []}

    monkeypatch.setattr(api_client, "get", get)
    out = pages["lessons"].sessions(None, SUIZHOU + "&period=last_week", "zh", 3, None, "dedicated", "", SESSION)
    assert calls == [("/api/v1/scopes/city/421300/lessons/sessions",
                      {"page": 3, "page_size": 30, "period": "last_week", "kind": "dedicated"})]
    assert out[-2:] == (False, True)  # the last of three pages
    assert {b.id["fmt"]: b.id["query"] for b in out[2]}["csv"] == "period=last_week&kind=dedicated"


def test_an_alert_with_alerts_grouped_under_it_offers_to_open_them(pages):
    patrol = pages["patrol"]
    alert = {"id": 7, "state": "firing", "severity": "critical", "school_name": "一中", "room": "网络中心",
             "rule_title": "学校网络中断", "first_seen": "2026-11-25T01:00:00+00:00", "count": 3, "grouped": 12}
    cell = patrol.alert_rows([alert], "zh", acting=False)[0][6]
    opener = cell[-1]
    assert isinstance(opener, html.A) and opener.id == {"type": "patrol-grouped", "alert": 7}
    assert opener.children == "12 条归并" and cell[0] == 3
    assert patrol.alert_rows([{**alert, "grouped": 0}], "zh", acting=False)[0][6] == 3
    assert patrol.alert_rows([{k: v for k, v in alert.items() if k != "grouped"}], "zh", acting=False)[0][6] == 3
