"""地图 Map: the scope's children drawn as their boundaries and coloured by a figure over the URL's period;
below the counties, the schools as points by state. A click drills down, or opens the school."""

import dash
from dash import Input, Output, State, callback, ctx, dcc, html

from dashboard import api_client, map_figures
from dashboard.components import panel
from dashboard.i18n import DEFAULT_LANG, figure_name, t
from dashboard.page import page_callback
from dashboard.scope import DEFAULT_FIGURE, SCOPE_ROUTE, breadcrumb, figure_chosen, requested_scope
from dashboard.settings import dashboard_settings

dash.register_page(__name__, path="/map", title="地图 · 教育信息化数字驾驶舱", order=0.5,
                   nav="nav.map", api_route=f"{SCOPE_ROUTE}/map")

PATH = "/map"


def layout(figure: str | None = None, **_query) -> html.Div:
    """Breadcrumb, the colour-by figure, the map and what it could not draw."""
    return html.Div(className="page map", children=[
        dcc.Interval(id="map-refresh", interval=dashboard_settings().refresh_ms),
        dcc.Store(id="map-drawn"),
        html.Div(className="page-head", children=[html.Div(id="map-breadcrumb", className="breadcrumb")]),
        html.Div(id="map-error"),
        panel(html.Div([
            html.Div(className="inline-control", children=[
                html.Label(id="map-figure-label", htmlFor="map-figure"),
                # the URL's figure among the first options: the menu clears a value its options lack
                dcc.Dropdown(id="map-figure", value=figure or DEFAULT_FIGURE, clearable=False, searchable=False,
                             options=[{"label": t(figure or DEFAULT_FIGURE, DEFAULT_LANG),
                                       "value": figure or DEFAULT_FIGURE}]),
            ]),
            map_figures.map_graph("map-graph", 800),
            html.Div(id="map-notes", className="muted"),
        ])),
    ])


@callback(Output("map-figure", "options"), Output("map-figure", "value"), Output("map-figure-label", "children"),
          Input("lang", "data"), State("session", "data"), State("map-figure", "value"))
@page_callback()
def figure_options(lang: str, session: dict, current: str | None):
    """The catalogue of figures to colour the map by."""
    try:
        catalogue = api_client.get(session["token"], "/api/v1/figures")
    except api_client.ApiError:
        catalogue = []  # the same failure reaches the map's callback, which shows the API's message
    options = [{"label": figure_name(f, lang), "value": f["key"]} for f in catalogue]
    return options, current or DEFAULT_FIGURE, t("treemap.figure", lang)


@callback(
    Output("map-graph", "figure"), Output("map-drawn", "data"), Output("map-notes", "children"),
    Output("map-breadcrumb", "children"), Output("map-error", "children"),
    Input("map-refresh", "n_intervals"), Input("url", "search"), Input("lang", "data"),
    Input("map-figure", "value"), State("session", "data"), State("map-drawn", "data"),
)
@page_callback("map-error-message", lambda box, **_: (dash.no_update, None, [], [], box))
def refresh(_n: int | None, search: str | None, lang: str, key: str | None, session: dict, drawn: dict | None):
    """Draw the map of the URL's scope (a live refresh re-colours what is drawn)."""
    level, code = requested_scope(search, session)
    result = map_figures.draw(session["token"], level, code, key or DEFAULT_FIGURE, search, lang, drawn,
                              live=ctx.triggered_id == "map-refresh", path=PATH)
    crumbs = dash.no_update if result.scope is None else breadcrumb(result.scope, session["user"], PATH, "map")
    notes = dash.no_update if result.notes is None else [html.Div(n) for n in result.notes]
    return result.figure, result.drawn, notes, crumbs, None


@callback(Output("url", "search", allow_duplicate=True), Input("map-figure", "value"), State("url", "search"),
          prevent_initial_call=True)
def keep_figure(key: str | None, search: str | None) -> str:
    """The figure chosen goes into the URL, so a drill-down and a shared link keep it."""
    return figure_chosen(key, search)


@callback(Output("url", "href", allow_duplicate=True), Input("map-graph", "clickData"), State("url", "search"),
          prevent_initial_call=True)
@page_callback()
def drill_down(click: dict | None, search: str | None):
    """A click on a child opens its map (keeping the period and the figure); on a school, the school's page."""
    target = map_figures.click_target(click, PATH)
    if target is None:
        raise dash.exceptions.PreventUpdate
    return target
