"""The period and the overview's figure kept in the URL: read, changed, carried by every link and the
navigation, passed to the API; and a tile's note on the previous period."""

import sys

import dash
import pytest

from dashboard import api_client
from dashboard.app import (
    choose_hours,
    choose_period,
    create_app,
    nav_links,
    period_options,
    show_hours,
    show_period,
)
from dashboard.components import change_note, period_label, tile
from dashboard.page import page_callback
from dashboard.scope import (
    breadcrumb,
    carry,
    current_view,
    href,
    keeping,
    lens_params,
    period_params,
    requested_figure,
    requested_period,
    scope_search,
    view_params,
    with_view,
)

SUIZHOU = "?level=city&code=421300"


def test_the_view_is_read_from_the_url_defaults_left_out():
    assert view_params(None) == view_params("") == {}
    assert view_params(SUIZHOU) == {}
    assert view_params(SUIZHOU + "&period=last_month&figure=boards_in_use_now") == {
        "period": "last_month", "figure": "boards_in_use_now"}
    assert view_params("?period=now&figure=online_rate") == {}  # the defaults: what the URL had before
    assert view_params("?period=last_year") == {}  # not a period the API knows
    assert view_params("?period=today&from=2026-11-01&to=2026-11-07") == {"from": "2026-11-01", "to": "2026-11-07"}
    assert period_params(SUIZHOU + "&period=this_week&figure=devices") == {"period": "this_week"}
    assert period_params(SUIZHOU) == {}
    assert requested_period(SUIZHOU) == "now"
    assert requested_period("?period=this_term") == "this_term"
    assert requested_period("?from=2026-11-01&to=2026-11-07") == "custom"
    assert requested_figure(SUIZHOU) == "online_rate"
    assert requested_figure("?figure=devices") == "devices"


def test_a_view_changed_keeps_the_scope_and_drops_defaults():
    assert with_view(SUIZHOU, period="last_month") == SUIZHOU + "&period=last_month"
    assert with_view(SUIZHOU + "&period=last_month", period="now") == SUIZHOU
    assert with_view("", period="now") == ""
    assert with_view(SUIZHOU + "&from=2026-11-01&to=2026-11-07", period="today") == SUIZHOU + "&period=today"
    assert with_view(SUIZHOU + "&period=today", figure="devices") == SUIZHOU + "&period=today&figure=devices"
    assert with_view(SUIZHOU + "&figure=devices", figure="online_rate") == SUIZHOU


def test_links_keep_the_period_and_the_figure_while_a_page_callback_runs():
    assert href("/", "county", "421303") == "/?level=county&code=421303"  # no view: the URLs of before
    with keeping(SUIZHOU + "&period=last_month&figure=devices"):
        assert current_view() == {"period": "last_month", "figure": "devices"}
        assert href("/", "county", "421303") == "/?level=county&code=421303&period=last_month&figure=devices"
        assert href("/device", "county", "421303", id="b-1") == (
            "/device?level=county&code=421303&period=last_month&figure=devices&id=b-1")
        assert scope_search("school", "s1") == "?level=school&code=s1&period=last_month&figure=devices"
        scope = {"name": "曾都区", "parents": [{"level": "city", "code": "421300", "name": "随州市"}]}
        crumbs = breadcrumb(scope, {"scope_level": "city", "scope_code": "421300"}, "/equity", "equity")
        assert crumbs[0].href == "/equity?level=city&code=421300&period=last_month&figure=devices"
    assert current_view() == {}
    assert href("/", "county", "421303") == "/?level=county&code=421303"


def test_page_callbacks_keep_the_view_of_their_url():
    @page_callback()
    def refresh(search, lang, session):
        return href("/", "county", "421303")

    assert refresh(SUIZHOU + "&period=yesterday", "zh", {"token": "t"}) == "/?level=county&code=421303&period=yesterday"
    assert refresh(SUIZHOU, "zh", {"token": "t"}) == "/?level=county&code=421303"
    assert current_view() == {}


def test_carry_keeps_the_period_and_the_figure():
    assert carry("/equity", SUIZHOU + "&period=last_month&figure=devices&id=x") == (
        "/equity?level=city&code=421300&period=last_month&figure=devices")
    assert carry("/equity", "?period=this_week") == "/equity?period=this_week"
    assert carry("/equity", "?from=2026-11-01&to=2026-11-07") == "/equity?from=2026-11-01&to=2026-11-07"
    assert carry("/equity", SUIZHOU) == "/equity" + SUIZHOU


@pytest.fixture(scope="module")
def page_registry():
    """Dash's page registry as the cockpit fills it: creating the app registers (imports) its pages."""
    if "pages.overview" not in sys.modules:
        create_app()
    return dash.page_registry


@pytest.fixture(scope="module")
def overview(page_registry):
    """The overview page's module as Dash imports it."""
    return sys.modules["pages.overview"]


def test_navigation_keeps_the_period(page_registry):
    available = frozenset({"/api/v1/scopes/{level}/{code}/overview", "/api/v1/scopes/{level}/{code}/equity"})
    links = nav_links("/", SUIZHOU + "&period=last_month&figure=devices", "zh", available)
    assert [link.href for link in links] == ["/?level=city&code=421300&period=last_month&figure=devices",
                                             "/equity?level=city&code=421300&period=last_month&figure=devices"]
    assert [link.href for link in nav_links("/", "?period=today", "zh", available)] == [
        "/?period=today", "/equity?period=today"]


def test_the_period_picker_shows_and_sets_the_url():
    assert [o["label"] for o in period_options(None, "zh")] == [
        "实时", "今天", "昨天", "本周", "上周", "本月", "上月", "本学期"]
    assert [o["label"] for o in period_options(None, "en")] == [
        "Now", "Today", "Yesterday", "This week", "Last week", "This month", "Last month", "This term"]
    custom = period_options("?from=2026-11-01&to=2026-11-07", "zh")
    assert custom[-1] == {"label": "自定义 2026-11-01–2026-11-07", "value": "custom"}
    options, value, hidden, _title = show_period(SUIZHOU + "&period=last_month", "zh", {"token": "t"})
    assert value == "last_month" and not hidden and len(options) == 8
    assert show_period(None, None, None)[1:3] == ("now", True)  # nobody logged in: no picker
    assert choose_period("last_month", SUIZHOU) == SUIZHOU + "&period=last_month"
    assert choose_period("now", SUIZHOU + "&period=last_month&figure=devices") == SUIZHOU + "&figure=devices"
    for unchanged in (("now", SUIZHOU), ("last_month", "?period=last_month"), ("custom", "?from=2026-11-01")):
        with pytest.raises(dash.exceptions.PreventUpdate):
            choose_period(*unchanged)


def test_the_overview_keeps_its_figure_in_the_url(overview):
    assert overview.keep_figure("devices", SUIZHOU + "&period=today") == SUIZHOU + "&period=today&figure=devices"
    assert overview.keep_figure("online_rate", SUIZHOU + "&figure=devices") == SUIZHOU
    with pytest.raises(dash.exceptions.PreventUpdate):
        overview.keep_figure("online_rate", SUIZHOU)
    click = {"points": [{"customdata": ["county", "421303"]}]}
    assert overview.drill_down(click, SUIZHOU + "&period=last_month&figure=devices") == (
        "?level=county&code=421303&period=last_month&figure=devices")
    assert overview.drill_down(click, SUIZHOU) == "?level=county&code=421303"
    assert dropdown(overview.layout(figure="devices"), "overview-figure").value == "devices"  # from the URL
    assert dropdown(overview.layout(), "overview-figure").value == "online_rate"


def dropdown(component, element_id: str):
    """The component with this id in a layout."""
    if getattr(component, "id", None) == element_id:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list) else [children] if children is not None else []:
        found = dropdown(child, element_id) if hasattr(child, "children") or hasattr(child, "id") else None
        if found is not None:
            return found
    return None


def test_a_tile_says_the_previous_value_and_the_change():
    rate = {"value": 0.934, "previous": 0.921, "change": 0.013}
    assert change_note(rate, "ratio", "zh") == "上期 92.1% ↑1.3"
    assert change_note({"previous": 0.95, "change": -0.02}, "ratio", "en") == "Previous 95.0% ↓2.0"
    assert change_note({"previous": 120, "change": 0}, "count", "zh") == "上期 120 →0"
    assert change_note({"previous": 120, "change": -8}, "count", "zh") == "上期 120 ↓8"
    assert change_note({"previous": None, "change": None}, "ratio", "zh") == "上期 —"
    assert change_note(None, "count", "zh") == "上期 —"
    assert change_note({"previous": 3, "change": None}, "count", "zh") == "上期 3"
    noted = tile("在线率", "93.4%", "overview-online-rate", compare="上期 92.1% ↑1.3")
    assert noted.children[-1].id == "overview-online-rate-previous"
    assert noted.children[-1].children == "上期 92.1% ↑1.3"
    assert len(tile("在线率", "93.4%", "x").children) == 2  # no period: the tile of before


def test_headline_tiles_compare_only_over_a_period(overview):
    figs = {"devices": {"value": 10, "previous": 9, "change": 1},
            "online_rate": {"value": 0.9, "previous": None, "change": None},
            "boards_in_use_now": {"value": 2}, "recorders_live_now": {"value": 1, "previous": 1, "change": 0}}
    availability = {"online": 9}

    def notes(tiles):
        return {t.children[1].id: t.children[-1].children for t in tiles if t.children[-1].id
                and t.children[-1].id.endswith("-previous")}

    assert notes(overview.headline_tiles(figs, availability, 0, "zh")) == {}
    assert notes(overview.headline_tiles(figs, availability, 0, "zh", compared=True)) == {
        "overview-devices": "上期 9 ↑1", "overview-online-rate": "上期 —", "overview-boards": "上期 —",
        "overview-live": "上期 1 →0"}


def test_pages_pass_the_period_to_the_api(overview, monkeypatch):
    calls = []

    def get(token, path, **params):
        calls.append((path.rsplit("/", 1)[-1], params))
        raise api_client.ApiError(404, "stop")

    monkeypatch.setattr(api_client, "get", get)
    session = {"token": "t", "user": {"scope_level": "city", "scope_code": "421300"}}
    overview.children_by_figure(None, SUIZHOU + "&period=last_month", "zh", "devices", session)
    assert calls == [("figures", {"keys": "devices,devices", "period": "last_month"})]
    calls.clear()
    overview.children_by_figure(None, SUIZHOU, "zh", None, session)
    assert calls == [("figures", {"keys": "online_rate,devices"})]


def test_a_period_is_named_in_words():
    assert period_label({"label": "last_month"}, "zh") == "上月"
    assert period_label({"label": "custom", "from": "2026-11-01", "to": "2026-11-07"}, "en") == "2026-11-01–2026-11-07"
    assert period_label(None, "en") == "Custom"


def test_the_lesson_hours_switch_rides_with_a_period_only():
    assert view_params(SUIZHOU + "&hours=lessons") == {}  # no period: no lens
    assert view_params(SUIZHOU + "&period=last_month&hours=lessons") == {"period": "last_month", "hours": "lessons"}
    assert period_params(SUIZHOU + "&period=last_month&hours=lessons") == {"period": "last_month"}
    assert lens_params(SUIZHOU + "&period=last_month&hours=lessons") == {"hours": "lessons"}
    assert choose_hours("lessons", SUIZHOU + "&period=last_month") == SUIZHOU + "&period=last_month&hours=lessons"
    assert choose_hours("all", SUIZHOU + "&period=last_month&hours=lessons") == SUIZHOU + "&period=last_month"
    assert show_hours(SUIZHOU, "zh")[2] == {"display": "none"}
    assert show_hours(SUIZHOU + "&period=today&hours=lessons", "zh")[1:3] == ("lessons", {})
    assert carry("/equity", SUIZHOU + "&period=today&hours=lessons").endswith("period=today&hours=lessons")


def test_the_overview_asks_for_the_lesson_hours_of_figures_that_have_them(overview, monkeypatch):
    calls = []
    catalogue = [{"key": "online_rate", "lessons": True}, {"key": "devices", "lessons": False}]

    def get(token, path, **params):
        if path == "/api/v1/figures":
            return catalogue
        calls.append((path.rsplit("/", 1)[-1], params))
        if path.endswith("/figures"):
            return {"children": [], "figures": {}}
        raise api_client.ApiError(404, "stop")

    monkeypatch.setattr(api_client, "get", get)
    session = {"token": "t", "user": {"scope_level": "city", "scope_code": "421300"}}
    month, lens = {"period": "last_month"}, {"period": "last_month", "hours": "lessons"}
    overview.children_by_figure(None, SUIZHOU + "&period=last_month&hours=lessons", "zh", "devices", session)
    assert calls == [("figures", {"keys": "devices,devices", **month}),  # no lens: asked whole
                     ("ranking", {"figure": "devices", "order": "worst", "limit": 10, **month})]
    calls.clear()
    overview.children_by_figure(None, SUIZHOU + "&period=last_month&hours=lessons", "zh", "online_rate", session)
    assert calls == [("figures", {"keys": "online_rate,devices", **month}),  # tile sizes: the period's devices
                     ("figures", {"keys": "online_rate", **lens}),
                     ("ranking", {"figure": "online_rate", "order": "worst", "limit": 10, **lens})]
