"""运行监测 Operation monitoring: a scope's devices now, its trend, its children and the worst of them."""

import dash
from dash import Input, Output, State, callback, ctx, dcc, html

from dashboard import api_client, figures, map_figures
from dashboard.components import (
    change_note,
    empty,
    export_buttons,
    graph,
    light,
    panel,
    panel_head,
    period_label,
    table,
    tile,
    which_link,
)
from dashboard.i18n import (
    DEFAULT_LANG,
    figure_name,
    fmt_count,
    fmt_gap,
    fmt_rate,
    fmt_time,
    fmt_value,
    parse_time,
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
    keeping,
    period_params,
    requested_scope,
    scope_search,
)
from dashboard.settings import dashboard_settings

dash.register_page(__name__, path="/", title="运行监测 · 教育信息化数字驾驶舱", order=0,
                   nav="nav.overview", api_route=f"{SCOPE_ROUTE}/overview")

HEADLINE = ("devices", "online_rate", "boards_in_use_now", "recorders_live_now")
RANK_LIMIT = 10
FEED_LENGTH = 8
SEVERITY_LIGHT = {"critical": "missed", "major": "behind", "warning": "behind", "info": "no_data"}


def layout(figure: str | None = None, **_query) -> html.Div:
    """Breadcrumb, headline tiles, trend, kinds, alert feed, children treemap, worst ranking and children table."""
    return html.Div(className="page overview", children=[
        dcc.Interval(id="overview-refresh", interval=dashboard_settings().refresh_ms),
        html.Div(className="page-head", children=[
            html.Div(id="overview-breadcrumb", className="breadcrumb"),
            html.Div(id="overview-as-of", className="muted as-of"),
        ]),
        html.Div(id="overview-error"),
        html.Div(id="overview-tiles", className="tiles", children=[
            tile("", "—", f"overview-placeholder-{i}") for i in range(len(HEADLINE) + 1)]),
        html.Div(id="overview-content", className="overview-grid", children=[
            panel(graph("overview-trend")),
            panel(graph("overview-kinds")),
            panel(html.Div(id="overview-alert-feed", className="scroll"), title=html.Span(id="overview-feed-title"),
                  class_name="feed-panel"),
            panel(html.Div([
                html.Div(className="inline-control", children=[
                    html.Label(id="overview-figure-label", htmlFor="overview-figure"),
                    # the URL's figure among the first options: the menu clears a value its options lack
                    dcc.Dropdown(id="overview-figure", value=figure or DEFAULT_FIGURE,
                                 options=[{"label": t(figure or DEFAULT_FIGURE, DEFAULT_LANG), "value": figure or DEFAULT_FIGURE}], clearable=False, searchable=False),
                ]),
                graph("overview-treemap", 362),
            ])),
            panel(html.Div(id="overview-ranking", className="scroll"), class_name="ranking-panel"),
            panel(html.Div(id="overview-children-table", className="scroll"), class_name="children-panel"),
            html.Section(className="panel map-panel", style={"gridColumn": "1 / -1"}, children=[
                dcc.Store(id="overview-map-drawn"), map_figures.map_graph("overview-map", 560),
                html.Div(id="overview-map-notes", className="muted")]),
        ]),
    ])


def headline_tiles(figs: dict, availability: dict, alerts: int, lang: str, compared: bool = False,
                   scope: tuple[str, str] | None = None) -> list:
    """The headline numbers of a scope; the online rate carries its target's traffic light. Over a period
    (`compared`), the figures' tiles also say the previous period's value and the change. With the
    `scope` (level, code), each figure's tile opens the schools behind it."""
    rate = figs["online_rate"]
    status = (rate.get("target") or {}).get("status")
    note = f"{t('target', lang)} {fmt_rate((rate.get('target') or {}).get('value'))}" if status else None

    def compare(key: str, unit: str) -> str | None:
        return change_note(figs.get(key), unit, lang) if compared else None

    def which(key: str):
        return which_link(*scope, key, lang, f"overview-which-{key}") if scope else None

    return [
        tile(t("devices", lang), fmt_count(figs["devices"]["value"], lang), "overview-devices",
             compare=compare("devices", "count"), link=which("devices")),
        tile(t("online_rate", lang), fmt_rate(rate["value"]), "overview-online-rate", status, note,
             compare=compare("online_rate", "ratio"), link=which("online_rate")),
        tile(t("online", lang), fmt_count(availability["online"], lang), "overview-online"),
        tile(t("boards_in_use_now", lang), fmt_count(figs["boards_in_use_now"]["value"], lang), "overview-boards",
             compare=compare("boards_in_use_now", "count"), link=which("boards_in_use_now")),
        tile(t("recorders_live_now", lang), fmt_count(figs["recorders_live_now"]["value"], lang), "overview-live",
             compare=compare("recorders_live_now", "count"), link=which("recorders_live_now")),
        tile(t("open_alerts", lang), fmt_count(alerts, lang), "overview-alerts", "missed" if alerts else "met"),
    ]


def children_table(children: list[dict], lang: str, bands: figures.Bands | None) -> html.Table:
    """Each child's devices, online devices and online rate (coloured by `bands`); its name drills down, and
    a child above the schools opens the schools behind its online rate."""
    above_schools = any(c["level"] != "school" for c in children)
    rows = [[dcc.Link(c["name"], href=href("/", c["level"], c["code"]), id=f"overview-child-{c['code']}"),
             fmt_count(c["availability"]["devices"], lang), fmt_count(c["availability"]["online"], lang),
             html.Span(fmt_rate(c["availability"]["online_rate"]),
                       style={"color": figures.rate_colour(c["availability"]["online_rate"], bands)})]
            + ([which_link(c["level"], c["code"], "online_rate", lang, f"overview-child-which-{c['code']}")]
               if above_schools else [])
            for c in children]
    headers = [t("name", lang), t("devices", lang), t("online", lang), t("online_rate", lang)]
    return table(headers + ([t("which.title", lang)] if above_schools else []), rows, lang, "overview-table")


def ranking_table(ranking: dict, lang: str) -> html.Table:
    """The worst children by one figure, with their target status and gap."""
    unit = ranking["figure"]["unit"]
    rows = [[i["rank"], dcc.Link(i["name"], href=href("/", i["level"], i["code"])), fmt_value(i["value"], unit, lang),
             light((i.get("target") or {}).get("status"), lang) if i.get("target") else "—",
             fmt_gap((i.get("target") or {}).get("gap"), unit, lang)] for i in ranking["items"]]
    return table([t("rank", lang), t("name", lang), figure_name(ranking["figure"], lang), t("status", lang),
                  t("gap", lang)], rows, lang, "overview-ranking-table")


def alert_feed(alerts: list[dict], level: str, code: str, lang: str) -> html.Div:
    """The latest firing alerts, newest first: severity, where, what, since when; each opens its device."""
    if not alerts:
        return empty(lang)
    newest = sorted(alerts, key=lambda a: a["first_seen"], reverse=True)[:FEED_LENGTH]
    return html.Ul(className="feed", id="overview-feed-list", children=[
        html.Li([html.Span(t(f"severity.{a['severity']}", lang), className=f"light light-{SEVERITY_LIGHT[a['severity']]}"),
                 dcc.Link(f"{a['school_name']} {a['room'] or ''}", href=href("/device", level, code, id=a["device_id"])),
                 html.Span(a["rule_title"], className="what"), html.Span(fmt_time(a["first_seen"]), className="muted")])
        for a in newest])


@callback(
    Output("overview-breadcrumb", "children"), Output("overview-tiles", "children"),
    Output("overview-kinds", "figure"), Output("overview-trend", "figure"),
    Output("overview-children-table", "children"), Output("overview-alert-feed", "children"),
    Output("overview-feed-title", "children"), Output("overview-as-of", "children"),
    Output("overview-error", "children"), Output("overview-content", "hidden"),
    Input("overview-refresh", "n_intervals"), Input("url", "search"), Input("lang", "data"),
    State("session", "data"),
)
@page_callback("overview-error-message", lambda box, **_: ([], [], {}, {}, [], [], "", "", box, True))
def refresh(_n: int | None, search: str | None, lang: str, session: dict):
    """Fetch the scope's overview, headline figures and trend, and render them."""
    level, code = requested_scope(search, session)
    base, token, period = api_path(level, code), session["token"], period_params(search)
    data = api_client.get(token, f"{base}/overview")
    figs = api_client.get(token, f"{base}/figures", keys=",".join(HEADLINE), **period)
    lens = figures.lens_for(token, "online_rate", search)
    if lens:  # the online rate over the lesson hours only; the counts stay the whole period's
        figs["figures"]["online_rate"] = api_client.get(token, f"{base}/figures", keys="online_rate", **period,
                                                        **lens)["figures"]["online_rate"]
    if period:  # the trend over the period's days: by the hour for a day, else by the day
        bucket = "hour" if period.get("period") in ("today", "yesterday") else "day"
        trend = api_client.get(token, f"{base}/trend", figure="online_rate", bucket=bucket, **period, **lens)
        trend_title = f"{t('online_rate', lang)} · {period_label(figs.get('period'), lang)}" + (
            f" · {t('hours.lessons', lang)}" if lens else "")
    else:
        trend = api_client.get(token, f"{base}/trend", figure="online_rate", bucket="hour", days=2)
        trend_title = t("trend.online", lang)
    summary = api_client.get(token, f"{base}/alerts/summary")
    alerts = api_client.get(token, f"{base}/alerts", state=["firing", "acknowledged"], limit=200)
    tools = [*export_buttons("children", f"{base}/ranking", lang, figure="online_rate", order="best", limit=10000,
                             **period), which_link(level, code, "online_rate", lang, "overview-children-which")]
    return (
        breadcrumb(data["scope"], session["user"], "/", "overview"),
        headline_tiles(figs["figures"], data["availability"], summary["open"], lang, compared=bool(period),
                       scope=(level, code)),
        figures.kind_figure(data["availability"], lang),
        figures.trend_figure(trend["points"], trend["figure"], trend_title, lang,
                             bucket=trend.get("bucket", "hour"), now=parse_time(trend.get("as_of"))),
        [panel_head(t("children.table", lang), tools), children_table(data["children"], lang, figures.served_bands(token))],
        alert_feed(alerts, level, code, lang), t("alerts.feed", lang),
        f"{t('as_of', lang)} {fmt_time(data['as_of'], seconds=True)}", None, False,
    )


@callback(Output("overview-figure", "options"), Output("overview-figure", "value"),
          Output("overview-figure-label", "children"),
          Input("lang", "data"), State("session", "data"), State("overview-figure", "value"))
@page_callback()
def figure_options(lang: str, session: dict, current: str | None):
    """The catalogue of figures to colour the children by."""
    try:
        catalogue = api_client.get(session["token"], "/api/v1/figures")
    except api_client.ApiError:
        catalogue = []  # the same failure reaches the treemap callback, which shows the API's message
    options = [{"label": figure_name(f, lang), "value": f["key"]} for f in catalogue]
    return options, current or "online_rate", t("treemap.figure", lang)


@callback(
    Output("overview-treemap", "figure"), Output("overview-ranking", "children"),
    Input("overview-refresh", "n_intervals"), Input("url", "search"), Input("lang", "data"),
    Input("overview-figure", "value"), State("session", "data"),
)
@page_callback("overview-rank-error", lambda box, lang, **_: (figures.empty_figure(t("treemap", lang), lang), box))
def children_by_figure(_n: int | None, search: str | None, lang: str, key: str | None, session: dict):
    """The children coloured by the chosen figure, and the worst of them by it."""
    key = key or DEFAULT_FIGURE
    level, code = requested_scope(search, session)
    base, token, period = api_path(level, code), session["token"], period_params(search)
    lens = figures.lens_for(token, key, search)  # the colour-by figure through the lens, where it has one
    figs = api_client.get(token, f"{base}/figures", keys=f"{key},devices", **period)
    if lens:  # tiles sized by the devices of the period, coloured by the figure over its lesson hours
        over_lessons = {c["code"]: c["figures"][key] for c in
                        api_client.get(token, f"{base}/figures", keys=key, **period, **lens)["children"]}
        for child in figs["children"]:
            child["figures"][key] = over_lessons.get(child["code"], child["figures"][key])
    ranking = api_client.get(token, f"{base}/ranking", figure=key, order="worst", limit=RANK_LIMIT, **period, **lens)
    info = ranking["figure"]
    hours = f" · {t('hours.lessons', lang)}" if lens else ""
    title = f"{t('treemap', lang)} · {figure_name(info, lang)}{hours}"
    head = panel_head(f"{t('ranking', lang)} · {figure_name(info, lang)}{hours}",
                      [*export_buttons("ranking", f"{base}/ranking", lang, figure=key, order="worst", limit=10000,
                                       **period, **lens), which_link(level, code, key, lang, "overview-ranking-which")])
    body = ranking_table(ranking, lang) if ranking["items"] else empty(lang)
    return figures.treemap_figure(figs["children"], key, info, title, lang), [head, body]


@callback(Output("url", "search", allow_duplicate=True), Input("overview-figure", "value"), State("url", "search"),
          prevent_initial_call=True)
def keep_figure(key: str | None, search: str | None) -> str:
    """The figure chosen to colour the children by goes into the URL, so a drill-down keeps it."""
    return figure_chosen(key, search)


@callback(Output("url", "search", allow_duplicate=True), Input("overview-treemap", "clickData"),
          State("url", "search"), prevent_initial_call=True)
def drill_down(click: dict | None, search: str | None):
    """A click on a child's tile opens that child (keeping the period and the figure)."""
    if not click or not click.get("points") or not click["points"][0].get("customdata"):
        raise dash.exceptions.PreventUpdate
    level, code = click["points"][0]["customdata"][:2]
    with keeping(search):
        return scope_search(level, code)


@callback(
    Output("overview-map", "figure"), Output("overview-map-drawn", "data"), Output("overview-map-notes", "children"),
    Input("overview-refresh", "n_intervals"), Input("url", "search"), Input("lang", "data"),
    Input("overview-figure", "value"), State("session", "data"), State("overview-map-drawn", "data"),
)
@page_callback("overview-map-error", lambda box, lang, **_: (figures.empty_figure(t("map", lang), lang), None, box))
def children_on_map(_n: int | None, search: str | None, lang: str, key: str | None, session: dict,
                    drawn: dict | None):
    """The children on the map coloured by the chosen figure, or the schools by state (dashboard/map_figures.py)."""
    level, code = requested_scope(search, session)
    result = map_figures.draw(session["token"], level, code, key or DEFAULT_FIGURE, search, lang, drawn,
                              live=ctx.triggered_id == "overview-refresh", path="/")
    return result.figure, result.drawn, dash.no_update if result.notes is None else [html.Div(n) for n in result.notes]


@callback(Output("url", "href", allow_duplicate=True), Input("overview-map", "clickData"), State("url", "search"),
          prevent_initial_call=True)
@page_callback()
def map_drill_down(click: dict | None, search: str | None):
    """A click on a child's area opens that child (keeping the period and the figure); on a school, its page."""
    target = map_figures.click_target(click, "/")
    if target is None:
        raise dash.exceptions.PreventUpdate
    return target
