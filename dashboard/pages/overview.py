"""运行监测 Operation monitoring: a scope's availability now, its children, drill-down."""

from urllib.parse import parse_qs, urlencode

import dash
from dash import Input, Output, State, callback, dcc, html

from dashboard import api_client, figures
from dashboard.i18n import fmt_count, fmt_rate, t
from dashboard.settings import dashboard_settings

dash.register_page(__name__, path="/", title="运行监测 · 教育信息化数字驾驶舱", order=0)


def scope_href(level: str, code: str) -> str:
    """The cockpit URL of a scope."""
    return "/?" + urlencode({"level": level, "code": code})


def layout(**_query) -> html.Div:
    """Breadcrumb, headline tiles, kind breakdown and children; refreshed live."""
    return html.Div([
        dcc.Interval(id="overview-refresh", interval=dashboard_settings().refresh_ms),
        html.Div(id="overview-error"),
        html.Div(id="overview-breadcrumb", className="breadcrumb"),
        dcc.Loading(html.Div(id="overview-tiles", className="tiles"), type="dot"),
        html.Div(className="panels", children=[
            html.Div(className="panel", children=dcc.Graph(id="overview-kinds", config={"displayModeBar": False})),
            html.Div(className="panel", children=dcc.Graph(id="overview-children", config={"displayModeBar": False})),
        ]),
        html.Table(id="overview-table", className="children-table"),
        html.Div(id="overview-as-of", className="muted"),
    ])


def _requested_scope(search: str | None, session: dict) -> tuple[str, str]:
    query = parse_qs((search or "").lstrip("?"))
    if "level" in query and "code" in query:
        return query["level"][0], query["code"][0]
    return session["user"]["scope_level"], session["user"]["scope_code"]


def _breadcrumb(scope: dict, user: dict) -> list:
    own = (user["scope_level"], user["scope_code"])
    trail, reachable = [], False
    for p in scope["parents"]:
        reachable = reachable or (p["level"], p["code"]) == own
        if reachable:
            trail += [dcc.Link(p["name"], href=scope_href(p["level"], p["code"])), html.Span("›", className="sep")]
    return trail + [html.Span(scope["name"], id="overview-scope-name")]


def _tile(label: str, value: str, tile_id: str) -> html.Div:
    return html.Div(className="tile", children=[html.Div(label, className="label"),
                                                html.Div(value, className="value", id=tile_id)])


def _table(children: list[dict], lang: str) -> list:
    head = html.Tr([html.Th(t("name", lang)), html.Th(t("devices", lang)), html.Th(t("online", lang)),
                    html.Th(t("online_rate", lang))])
    rows = [html.Tr([
        html.Td(dcc.Link(c["name"], href=scope_href(c["level"], c["code"]), id=f"overview-child-{c['code']}")),
        html.Td(fmt_count(c["availability"]["devices"], lang)), html.Td(fmt_count(c["availability"]["online"], lang)),
        html.Td(fmt_rate(c["availability"]["online_rate"])),
    ]) for c in children]
    return [html.Thead(head), html.Tbody(rows)]


@callback(
    Output("overview-breadcrumb", "children"), Output("overview-tiles", "children"),
    Output("overview-kinds", "figure"), Output("overview-children", "figure"),
    Output("overview-table", "children"), Output("overview-as-of", "children"), Output("overview-error", "children"),
    Input("overview-refresh", "n_intervals"), Input("url", "search"), Input("lang", "data"),
    State("session", "data"),
)
def refresh(_n: int | None, search: str | None, lang: str | None, session: dict | None):
    """Fetch the scope's overview and render every panel."""
    lang = lang or "zh"
    if not session:
        raise dash.exceptions.PreventUpdate
    level, code = _requested_scope(search, session)
    try:
        data = api_client.get(session["token"], f"/api/v1/scopes/{level}/{code}/overview")
    except api_client.ApiError as exc:
        error = html.Div(str(exc), className="error", id="overview-error-message")
        return (dash.no_update,) * 6 + (error,)
    a = data["availability"]
    tiles = [
        _tile(t("devices", lang), fmt_count(a["devices"], lang), "overview-devices"),
        _tile(t("online", lang), fmt_count(a["online"], lang), "overview-online"),
        _tile(t("online_rate", lang), fmt_rate(a["online_rate"]), "overview-online-rate"),
    ] + [_tile(t(k["kind"], lang), f"{fmt_count(k['online'], lang)} / {fmt_count(k['devices'], lang)}",
               f"overview-kind-{k['kind']}") for k in a["by_kind"]]
    return (
        _breadcrumb(data["scope"], session["user"]), tiles, figures.kind_figure(a, lang),
        figures.children_figure(data["children"], lang), _table(data["children"], lang),
        f"{t('as_of', lang)}: {data['as_of'][:19].replace('T', ' ')} UTC", None,
    )


@callback(Output("url", "search", allow_duplicate=True), Input("overview-children", "clickData"),
          prevent_initial_call=True)
def drill_down(click: dict | None):
    """A click on a child's bar opens that child."""
    if not click or not click.get("points"):
        raise dash.exceptions.PreventUpdate
    level, code = click["points"][0]["customdata"]
    return "?" + urlencode({"level": level, "code": code})
