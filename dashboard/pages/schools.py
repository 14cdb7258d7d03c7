"""哪些学校 Which schools: the schools behind a scope's figure, for the URL's period.

Opened from the overview ("哪些学校?" beside a ranked figure, a headline tile, the children table
or a child). The scope, the figure and the period stay in the URL, so the list is a link one can
send. The API orders (worst or best first, by the value or by its change over a period), filters
(a school's or county's name, a school code) and pages; the page says how many match in all and
exports every one of them.
"""

import math

import dash
from dash import Input, Output, State, callback, dcc, html

from dashboard import api_client, figures
from dashboard.components import export_buttons, panel, period_label, table, turned_page
from dashboard.i18n import (
    DEFAULT_LANG,
    NO_DATA,
    figure_name,
    fmt_count,
    fmt_number,
    fmt_time,
    fmt_value,
    t,
)
from dashboard.page import page_callback
from dashboard.scope import (
    DEFAULT_FIGURE,
    SCOPE_ROUTE,
    api_path,
    breadcrumb,
    figure_chosen,
    href,
    period_params,
    query_values,
    requested_figure,
    requested_scope,
    with_view,
)

dash.register_page(__name__, path="/schools", title="哪些学校 · 教育信息化数字驾驶舱", order=10,
                   api_route=f"{SCOPE_ROUTE}/schools")

PAGE_SIZE = 25
# What the order dropdown offers: (the API's order, what it orders by); by the change only over a period.
ORDERS = {"worst": ("worst", "value"), "best": ("best", "value"),
          "change_worst": ("worst", "change"), "change_best": ("best", "change")}


def layout(figure: str | None = None, order: str | None = None, q: str | None = None, **_query) -> html.Div:
    """The figure and order to list by, a filter, the schools and paging, as the URL says."""
    return html.Div(className="page schools", children=[
        dcc.Store(id="schools-page", data=1),
        html.Div(className="page-head", children=[
            html.Div(id="schools-breadcrumb", className="breadcrumb"),
            html.Div(id="schools-as-of", className="muted as-of")]),
        html.Div(className="toolbar", children=[
            dcc.Dropdown(id="schools-figure", value=figure or DEFAULT_FIGURE, clearable=False, searchable=False,
                         options=[{"label": figure or DEFAULT_FIGURE, "value": figure or DEFAULT_FIGURE}],
                         style={"width": "300px"}),
            dcc.Dropdown(id="schools-order", value=order if order in ORDERS else "worst", clearable=False,
                         searchable=False, options=order_options(DEFAULT_LANG, compared=True),
                         style={"width": "200px"}),
            dcc.Input(id="schools-search", type="search", debounce=True, className="search", value=q or ""),
            html.Div(id="schools-export", className="panel-tools push-right"),
        ]),
        html.Div(id="schools-error"),
        panel(html.Div(id="schools-table", className="scroll"), title=html.Span(id="schools-title"),
              tools=html.Span(id="schools-back")),
        html.Div(className="toolbar pager", children=[
            html.Button(id="schools-prev", className="secondary", n_clicks=0),
            html.Span(id="schools-count", className="muted"),
            html.Button(id="schools-next", className="secondary", n_clicks=0),
        ]),
    ])


def order_options(lang: str, compared: bool) -> list[dict]:
    """Worst or best first; over a period (`compared`) also by the change since the previous one."""
    keys = list(ORDERS) if compared else ["worst", "best"]
    return [{"label": t(f"which.order.{k}", lang), "value": k} for k in keys]


def count_label(total: int, offset: int, shown: int, lang: str) -> str:
    """Which of how many schools the page shows, e.g. 第 26–50 所,共 312 所."""
    if not total:
        return t("which.none", lang)
    first, last = (offset + 1, offset + shown) if shown else (NO_DATA, NO_DATA)  # a page past the last one
    return t("which.page", lang).format(first=first, last=last, total=fmt_count(total, lang))


def school_rows(data: dict, lang: str) -> list[list]:
    """One row per school: its place, name (opening its overview), county, value (and, over a period, the
    previous value and the change), the numerator and denominator, and its devices."""
    unit, compared = data["figure"]["unit"], "period" in data
    rows = []
    for s in data["items"]:
        row = [s["rank"], dcc.Link(s["name"], href=href("/", "school", s["code"]), id=f"schools-school-{s['code']}"),
               s["code"], s["county_name"] or NO_DATA, fmt_value(s["value"], unit, lang)]
        if compared:
            change = s.get("change")
            row += [fmt_value(s.get("previous"), unit, lang),
                    NO_DATA if change is None else (fmt_number(change * 100, 1, " pp") if unit == "ratio"
                                                    else fmt_number(change, 2))]
        digits = 2 if unit in ("hours", "ms", "mbps") else 0  # a ratio's parts are counts or minutes
        row += [fmt_number(s["num"], digits), fmt_number(s["den"], digits),
                dcc.Link(t("which.devices", lang), href=href("/devices", "school", s["code"]))]
        rows.append(row)
    return rows


def school_headers(data: dict, lang: str) -> list[str]:
    """The table's headings; the previous period's columns only over a period."""
    compared = ["which.previous", "which.change"] if "period" in data else []
    return ([t(k, lang) for k in ("rank", "name", "which.code", "device.county")] + [figure_name(data["figure"], lang)]
            + [t(k, lang) for k in (*compared, "which.num", "which.den", "which.devices")])


@callback(Output("schools-figure", "options"), Output("schools-search", "placeholder"),
          Output("schools-prev", "children"), Output("schools-next", "children"),
          Output("schools-order", "options"),
          Input("lang", "data"), Input("url", "search"), State("session", "data"))
@page_callback()
def words(lang: str, search: str | None, session: dict):
    """The catalogue to choose a figure from, and the page's words, in the chosen language."""
    try:
        catalogue = api_client.get(session["token"], "/api/v1/figures")
    except api_client.ApiError:
        catalogue = []  # the same failure reaches the list's callback, which shows the API's message
    options = [{"label": figure_name(f, lang), "value": f["key"]} for f in catalogue]
    return (options, t("which.search", lang), t("prev", lang), t("next", lang),
            order_options(lang, compared=bool(period_params(search))))


@callback(Output("url", "search", allow_duplicate=True), Input("schools-figure", "value"), State("url", "search"),
          prevent_initial_call=True)
def keep_figure(key: str | None, search: str | None) -> str:
    """The figure chosen goes into the URL, as on the overview, so the list stays a link."""
    return figure_chosen(key, search)


@callback(Output("url", "search", allow_duplicate=True), Input("schools-order", "value"),
          Input("schools-search", "value"), State("url", "search"), prevent_initial_call=True)
def keep_list(order: str | None, text: str | None, search: str | None) -> str:
    """The order and the filter chosen go into the URL too, so the list as it is shown can be sent on."""
    query = query_values(search)
    wanted = {"order": None if order in (None, "worst") else order, "q": (text or "").strip() or None}
    if all(query.get(k) == v for k, v in wanted.items()):
        raise dash.exceptions.PreventUpdate
    return with_view(search, **wanted)


@callback(Output("schools-page", "data"), Input("schools-prev", "n_clicks"), Input("schools-next", "n_clicks"),
          Input("schools-order", "value"), Input("schools-search", "value"), Input("url", "search"),
          State("schools-page", "data"), prevent_initial_call=True)
def turn_page(_prev: int, _next: int, _order, _search, _url, page: int):
    """Next or previous page; back to the first page when the order, the filter or the URL changes."""
    return turned_page("schools", page)


@callback(
    Output("schools-breadcrumb", "children"), Output("schools-title", "children"), Output("schools-back", "children"),
    Output("schools-table", "children"), Output("schools-count", "children"), Output("schools-export", "children"),
    Output("schools-as-of", "children"), Output("schools-error", "children"),
    Output("schools-prev", "disabled"), Output("schools-next", "disabled"),
    Input("url", "search"), Input("lang", "data"), Input("schools-page", "data"), Input("schools-order", "value"),
    Input("schools-search", "value"), State("session", "data"),
)
@page_callback("schools-error-message", lambda box, **_: ([], "", [], [], "", [], "", box, True, True))
def refresh(search: str | None, lang: str, page: int | None, order: str | None, text: str | None, session: dict):
    """One page of the scope's schools by the URL's figure and period, in the order and filter chosen."""
    level, code = requested_scope(search, session)
    path, period, key = f"{api_path(level, code)}/schools", period_params(search), requested_figure(search)
    api_order, by = ORDERS.get(order or "worst", ORDERS["worst"])
    if by == "change" and not period:
        api_order, by = "worst", "value"  # the change needs a period; the dropdown offers it only with one
    asked = {"figure": key, "order": api_order, "by": by, "q": (text or "").strip() or None, **period,
             **figures.lens_for(session["token"], key, search)}
    page = page or 1
    data = api_client.get(session["token"], path, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
                          **{k: v for k, v in asked.items() if v is not None})
    pages = max(1, math.ceil(data["total"] / PAGE_SIZE))
    title = f"{t('which.title', lang)} · {figure_name(data['figure'], lang)}"
    if "period" in data:
        title += f" · {period_label(data['period'], lang)}"
    back = dcc.Link(t("back.overview", lang), href=href("/", level, code), id="schools-overview",
                    style={"color": "#7fd3ff", "textDecoration": "none"})
    body = table(school_headers(data, lang), school_rows(data, lang), lang, "schools-list")
    return (breadcrumb(data["scope"], session["user"], "/schools", "schools"), title, back, body,
            count_label(data["total"], data["offset"], len(data["items"]), lang),
            export_buttons("schools", path, lang, **asked), f"{t('as_of', lang)} {fmt_time(data['as_of'], seconds=True)}",
            None, page <= 1, page >= pages)
