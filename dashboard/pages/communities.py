"""教联体 Communities: coverage of compulsory schools against the targets of the target table, kinds, size,
and the list."""

import dash
from dash import Input, Output, State, callback, dcc, html

from dashboard import api_client, lesson_figures
from dashboard.components import export_buttons, graph, light, panel, panel_head, table, tile
from dashboard.figures import Bands, rate_colour, served_bands
from dashboard.i18n import fmt_count, fmt_number, fmt_rate, missing, t
from dashboard.page import page_callback
from dashboard.scope import (
    SCOPE_ROUTE,
    api_path,
    breadcrumb,
    href,
    keeping,
    period_params,
    requested_scope,
    scope_search,
)
from dashboard.settings import dashboard_settings

dash.register_page(__name__, path="/communities", title="教联体 · 教育信息化数字驾驶舱", order=5,
                   nav="nav.communities", api_route=f"{SCOPE_ROUTE}/communities/coverage")


def layout(**_query) -> html.Div:
    """Coverage tiles, coverage by child against the targets, kinds, and the community list."""
    return html.Div(className="page communities", children=[
        dcc.Interval(id="communities-refresh", interval=2 * dashboard_settings().refresh_ms),
        html.Div(className="page-head", children=[html.Div(id="communities-breadcrumb", className="breadcrumb")]),
        html.Div(id="communities-error"),
        html.Div(id="communities-content", children=[
            html.Div(id="communities-tiles", className="tiles"),
            html.Div(className="grid-3", children=[
                panel(graph("communities-coverage", 340), class_name="span-2"),
                panel(graph("communities-kinds", 340))]),
            panel(html.Div(id="communities-list", className="scroll table-360")),
        ]),
    ])


def target_tiles(targets: list[dict], lang: str) -> list:
    """One tile per coverage target in force (from the target table): its bar and deadline, and where the
    scope stands; a single "no target set" tile when there is none."""
    if not targets:
        return [tile(t("target", lang), t("targets.not_set", lang), "communities-target-none",
                     note=t("targets.not_set.note", lang))]
    return [tile(t("targets.by", lang).format(deadline=g["deadline"], comparator=g["comparator"],
                                              value=fmt_rate(g["value"])),
                 t(f"status.{g['status']}", lang), f"communities-target-{g['deadline']}", g["status"],
                 note=None if missing(g["gap"]) or g["gap"] <= 0 else f"{t('gap', lang)} {fmt_rate(g['gap'])}")
            for g in targets]


def coverage_tiles(f: dict, lang: str) -> list:
    """Coverage against each target in force, and the shape of the communities."""
    goals = target_tiles(f["targets"], lang)
    return [
        tile(t("communities.coverage", lang), fmt_rate(f["coverage_rate"]), "communities-coverage-rate",
             note=f"{fmt_count(f['covered_schools'], lang)} / {fmt_count(f['compulsory_schools'], lang)}"),
        *goals,
        tile(t("communities.count", lang), fmt_count(f["communities"], lang), "communities-count"),
        tile(t("communities.avg_members", lang), fmt_number(f["avg_members"]), "communities-avg-members",
             note=None if missing(f["max_members"]) else t("communities.max_members", lang).format(
                 n=fmt_count(f["max_members"], lang))),
        tile(t("communities.over_cap", lang).format(cap=f["member_cap"]), fmt_count(f["over_cap"], lang),
             "communities-over-cap", "missed" if f["over_cap"] else "met"),
        tile(t("communities.cross_county", lang), fmt_count(f["cross_county"], lang), "communities-cross-county"),
    ]


def community_table(rows: list[dict], lang: str, bands: Bands | None) -> html.Table:
    """Each community: kind, lead school, members, members' devices online now, lessons from the lead."""
    body = [[dcc.Link(c["name"], href=href("/", "community", c["code"]), id=f"communities-link-{c['code']}"),
             light("no_data", lang, t(f"community.kind.{c['kind']}", lang)), c["lead_school_name"] or "—",
             fmt_count(c["members"], lang), html.Span(fmt_rate(c["member_online_rate"]),
                                     style={"color": rate_colour(c["member_online_rate"], bands)}),
             c["pairs_active"], c["lessons_held"], c["founded_on"] or "—"] for c in rows]
    return table([t("name", lang), t("type", lang), t("communities.lead", lang), t("communities.members", lang),
                  t("communities.member_online", lang), t("communities.pairs_active", lang),
                  t("communities.lessons_held", lang), t("communities.founded", lang)], body, lang,
                 "communities-table")


@callback(
    Output("communities-breadcrumb", "children"), Output("communities-tiles", "children"),
    Output("communities-coverage", "figure"), Output("communities-kinds", "figure"),
    Output("communities-list", "children"), Output("communities-error", "children"),
    Output("communities-content", "hidden"),
    Input("communities-refresh", "n_intervals"), Input("url", "search"), Input("lang", "data"),
    State("session", "data"),
)
@page_callback("communities-error-message", lambda box, **_: ([], [], {}, {}, [], box, True))
def refresh(_n, search, lang, session):
    """Fetch the scope's coverage and its communities."""
    base, token = api_path(*requested_scope(search, session)), session["token"]
    period = period_params(search)
    coverage = api_client.get(token, f"{base}/communities/coverage", **period)
    communities = api_client.get(token, f"{base}/communities", **period)
    f = coverage["figures"]
    head = panel_head(t("communities.list", lang), export_buttons("communities", f"{base}/communities", lang,
                                                                  **period))
    return (
        breadcrumb(coverage["scope"], session["user"], "/communities", "communities"), coverage_tiles(f, lang),
        lesson_figures.coverage_figure(coverage["children"], f["targets"], t("communities.by_child", lang), lang),
        lesson_figures.community_kinds_figure(f["by_kind"], t("communities.by_kind", lang), lang),
        [head, community_table(communities, lang, served_bands(token))], None, False,
    )


@callback(Output("url", "search", allow_duplicate=True), Input("communities-coverage", "clickData"),
          State("url", "search"), prevent_initial_call=True)
def drill_down(click: dict | None, search: str | None):
    """A click on a child's bar opens that child (keeping the period)."""
    if not click or not click.get("points") or not click["points"][0].get("customdata"):
        raise dash.exceptions.PreventUpdate
    level, code = click["points"][0]["customdata"][:2]
    with keeping(search):
        return scope_search(level, code)
