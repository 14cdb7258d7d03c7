"""设备清单 Device list: the devices of a scope, filtered and paged by the API, each opening its detail page."""

import math

import dash
from dash import Input, Output, State, callback, dcc, html

from dashboard import api_client
from dashboard.components import export_buttons, panel, table
from dashboard.i18n import DEFAULT_LANG, fmt_count, fmt_text, fmt_time, t
from dashboard.page import page_callback
from dashboard.scope import SCOPE_ROUTE, api_path, breadcrumb, href, requested_scope
from dashboard.settings import dashboard_settings

dash.register_page(__name__, path="/devices", title="设备清单 · 教育信息化数字驾驶舱", order=3,
                   nav="nav.devices", api_route=f"{SCOPE_ROUTE}/devices")

PAGE_SIZE = 18


def layout(**_query) -> html.Div:
    """Filters (kind, state, search), the device table and paging."""
    return html.Div(className="page devices", children=[
        dcc.Interval(id="devices-refresh", interval=dashboard_settings().refresh_ms),
        dcc.Store(id="devices-page", data=1),
        html.Div(className="page-head", children=[html.Div(id="devices-breadcrumb", className="breadcrumb")]),
        html.Div(className="toolbar", children=[
            dcc.Dropdown(id="devices-kind", options=kind_options(DEFAULT_LANG), value="", clearable=False, searchable=False,
                         style={"width": "200px"}),
            dcc.Dropdown(id="devices-online", options=state_options(DEFAULT_LANG), value="", clearable=False,
                         searchable=False, style={"width": "200px"}),
            dcc.Input(id="devices-search", type="search", debounce=True, className="search"),
            html.Div(id="devices-export", className="panel-tools push-right"),
        ]),
        html.Div(id="devices-error"),
        panel(html.Div(id="devices-table")),
        html.Div(className="toolbar pager", children=[
            html.Button(id="devices-prev", className="secondary", n_clicks=0),
            html.Span(id="devices-page-label", className="muted"),
            html.Button(id="devices-next", className="secondary", n_clicks=0),
        ]),
    ])


def kind_options(lang: str) -> list[dict]:
    """Device kinds to filter by (empty value: all)."""
    return [{"label": t("devices.all_kinds", lang), "value": ""}] + [
        {"label": t(k, lang), "value": k} for k in ("board", "recorder", "gateway")]


def state_options(lang: str) -> list[dict]:
    """Online states to filter by (empty value: any)."""
    return [{"label": t("devices.all_states", lang), "value": ""},
            {"label": t("device.online", lang), "value": "true"},
            {"label": t("device.offline", lang), "value": "false"}]


@callback(Output("devices-kind", "options"), Output("devices-online", "options"),
          Output("devices-search", "placeholder"), Output("devices-prev", "children"),
          Output("devices-next", "children"), Input("lang", "data"))
@page_callback()
def words(lang: str):
    """Filter choices and paging words in the chosen language."""
    return kind_options(lang), state_options(lang), t("devices.search", lang), t("prev", lang), t("next", lang)


@callback(Output("devices-page", "data"), Input("devices-prev", "n_clicks"), Input("devices-next", "n_clicks"),
          Input("devices-kind", "value"), Input("devices-online", "value"), Input("devices-search", "value"),
          State("devices-page", "data"), prevent_initial_call=True)
def turn_page(_prev: int, _next: int, _kind, _online, _search, page: int):
    """Next or previous page; back to the first page when a filter changes."""
    trigger = dash.ctx.triggered_id
    if trigger == "devices-next":
        return page + 1
    if trigger == "devices-prev":
        return max(1, page - 1)
    return 1


def device_rows(items: list[dict], level: str, code: str, lang: str) -> list[list]:
    """Table rows: the id links to the device page, keeping the scope."""
    return [[dcc.Link(d["id"], href=href("/device", level, code, id=d["id"]), id=f"devices-link-{d['id']}"),
             t(d["kind"], lang), fmt_text(d["school_name"]), fmt_text(d["county_name"]),
             fmt_text(d["room"]), fmt_text(d.get("vendor"), d.get("model")),
             html.Span(t("device.online" if d["online"] else "device.offline", lang),
                       className="state-on" if d["online"] else "state-off"),
             fmt_time(d["last_seen"])] for d in items]


@callback(
    Output("devices-breadcrumb", "children"), Output("devices-table", "children"),
    Output("devices-page-label", "children"), Output("devices-export", "children"), Output("devices-error", "children"),
    Output("devices-prev", "disabled"), Output("devices-next", "disabled"),
    Input("devices-refresh", "n_intervals"), Input("url", "search"), Input("lang", "data"),
    Input("devices-page", "data"), Input("devices-kind", "value"), Input("devices-online", "value"),
    Input("devices-search", "value"), State("session", "data"),
)
@page_callback("devices-error-message", lambda box, **_: ([], [], "", [], box, True, True))
def refresh(_n, search, lang, page, kind, online, text, session):
    """Fetch one page of the scope's devices with the filters."""
    level, code = requested_scope(search, session)
    path = f"{api_path(level, code)}/devices"
    filters = {"kind": kind or None, "online": online or None, "search": text or None}
    scope = api_client.get(session["token"], api_path(level, code))
    result = api_client.get(session["token"], path, page=page or 1, page_size=PAGE_SIZE,
                            **{k: v for k, v in filters.items() if v})
    pages = max(1, math.ceil(result["total"] / PAGE_SIZE))
    headers = [t("device", lang), t("device.kind", lang), t("device.school", lang), t("device.county", lang),
               t("device.room", lang), t("device.vendor", lang), t("status", lang), t("device.last_seen", lang)]
    label = t("devices.page", lang).format(page=result["page"], pages=pages, total=fmt_count(result["total"], lang))
    return (breadcrumb(scope, session["user"], "/devices", "devices"),
            table(headers, device_rows(result["items"], level, code, lang), lang, "devices-list"), label,
            export_buttons("devices", path, lang, **filters), None, result["page"] <= 1, result["page"] >= pages)
