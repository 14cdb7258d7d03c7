"""均衡发展 Equity: each county's coefficient of variation against the 差异系数 targets, and the urban–rural gap."""

import dash
from dash import Input, Output, State, callback, dcc, html

from dashboard import api_client, equity_figures
from dashboard.components import export_buttons, graph, light, panel, panel_head, table
from dashboard.i18n import fmt_count, missing, t
from dashboard.page import page_callback
from dashboard.scope import SCOPE_ROUTE, api_path, breadcrumb, href, period_params, requested_scope
from dashboard.settings import dashboard_settings

dash.register_page(__name__, path="/equity", title="均衡发展 · 教育信息化数字驾驶舱", order=1,
                   nav="nav.equity", api_route=f"{SCOPE_ROUTE}/equity")

TABLE_ROWS = 30
INDICATORS = ("boards_per_100_students", "online_rate", "use_hours_per_class_day", "mbps_per_student",
              "remote_lessons_per_class")


def layout(**_query) -> html.Div:
    """Composite CV by county, the locale gap, indicator CVs and the county table."""
    return html.Div(className="page equity", children=[
        dcc.Interval(id="equity-refresh", interval=4 * dashboard_settings().refresh_ms),
        html.Div(className="page-head", children=[html.Div(id="equity-breadcrumb", className="breadcrumb")]),
        html.Div(id="equity-error"),
        html.Div(id="equity-content", children=[
            html.Div(className="grid-2 equity-top", children=[
                panel(graph("equity-composite", 420)), panel(graph("equity-gap", 420))]),
            html.Div(className="grid-2", children=[
                panel(graph("equity-indicators", 440)),
                panel(html.Div(id="equity-table", className="scroll table-440"))]),
        ]),
    ])


VERDICT_LIGHT = {"pass": ("met", "equity.pass"), "fail": ("missed", "equity.fail"),
                 "too_few": ("no_data", "equity.too_few"), "no_target": ("no_data", "targets.not_set"),
                 "no_data": ("no_data", "status.no_data")}


def verdict_light(group: dict, data: dict, lang: str) -> html.Span:
    """达标 / 未达标 against the target that applies; 样本不足 (with why, in its tooltip) when the group has too
    few schools to judge; 未设定目标 when no target is set."""
    verdict = equity_figures.verdict(group, data)
    status, key = VERDICT_LIGHT[verdict]
    why = {"too_few": t("equity.too_few.note", lang).format(n=equity_figures.min_schools(group, data)),
           "no_target": t("targets.not_set.note", lang)}.get(verdict)
    return light(status, lang, t(key, lang), title=why)


def county_row(county: dict, group: dict, data: dict, lang: str) -> list:
    """One county group: schools, students, composite CV, verdict and indicator CVs ("—" when not judged)."""
    few = equity_figures.too_few_schools(group, data)
    composite = "—" if few or missing(group["composite_cv"]) else f"{group['composite_cv']:.3f}"
    cvs = [equity_figures.indicator_cv(group, k, data) for k in INDICATORS]
    return ([dcc.Link(county["name"], href=href("/equity", county["level"], county["code"])),
             t(f"group.{group['group']}", lang), fmt_count(group["schools"], lang), fmt_count(group["students"], lang),
             composite, verdict_light(group, data, lang)]
            + [f"{cv:.2f}" if cv is not None else "—" for cv in cvs])


def county_table(data: dict, lang: str) -> list:
    """The worst county groups' schools, students, composite CV, pass mark and indicator CVs.

    A province has about two hundred county groups; the screen shows the worst
    TABLE_ROWS (thousands of cells re-sent on every refresh keep the browser busy for
    seconds) and the export buttons give the whole list. Groups over too few schools to
    judge come after the judged ones and say 样本不足.
    """
    groups = equity_figures.county_groups(data["counties"], data)
    rows = [county_row(c, g, data, lang) for c, g in groups[:TABLE_ROWS]]
    headers = [t("county", lang), t("group", lang), t("equity.schools", lang), t("equity.students", lang),
               t("equity.composite_cv", lang), t("equity.passes", lang)] + [t(f"indicator.{k}", lang)
                                                                             for k in INDICATORS]
    shown = table(headers, rows, lang, "equity-county-table")
    if len(groups) <= TABLE_ROWS:
        return [shown]
    return [shown, html.Div(t("table.more", lang).format(shown=TABLE_ROWS, total=len(groups)),
                            className="muted table-note", id="equity-table-note")]


@callback(
    Output("equity-breadcrumb", "children"), Output("equity-composite", "figure"), Output("equity-gap", "figure"),
    Output("equity-indicators", "figure"), Output("equity-table", "children"), Output("equity-error", "children"),
    Output("equity-content", "hidden"),
    Input("equity-refresh", "n_intervals"), Input("url", "search"), Input("lang", "data"), State("session", "data"),
)
@page_callback("equity-error-message", lambda box, **_: ([], {}, {}, {}, [], box, True))
def refresh(_n: int | None, search: str | None, lang: str, session: dict):
    """Fetch the scope's equity coefficients and render them."""
    path = f"{api_path(*requested_scope(search, session))}/equity"
    period = period_params(search)
    data = api_client.get(session["token"], path, **period)
    head = panel_head(t("equity.table", lang), export_buttons("equity", path, lang, **period))
    return (
        breadcrumb(data["scope"], session["user"], "/equity", "equity"),
        equity_figures.composite_figure(data["counties"], t("equity.composite", lang), lang, data=data),
        equity_figures.gap_figure(data["gap"], t("equity.gap", lang), lang),
        equity_figures.indicators_figure(data["counties"], t("equity.indicators", lang), lang, data=data),
        [head, *county_table(data, lang)], None, False,
    )
