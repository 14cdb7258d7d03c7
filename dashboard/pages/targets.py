"""目标调度 Targets: every target that applies to the scope (on a figure or a measure), its time left, and a
league table of its children per target."""

import hashlib
import json
from collections import Counter

import dash
from dash import Input, Output, State, callback, dcc, html

from dashboard import api_client
from dashboard.components import empty, export_buttons, light, panel_head, table
from dashboard.i18n import figure_name, fmt_gap, fmt_value, t
from dashboard.page import page_callback
from dashboard.scope import SCOPE_ROUTE, api_path, breadcrumb, href, requested_scope
from dashboard.settings import dashboard_settings

dash.register_page(__name__, path="/targets", title="目标调度 · 教育信息化数字驾驶舱", order=2,
                   nav="nav.targets", api_route=f"{SCOPE_ROUTE}/targets")

STATUSES = ("met", "behind", "missed", "no_data")


def layout(**_query) -> html.Div:
    """One panel per target: its bar, deadline, the scope's standing and the children's league table."""
    return html.Div(className="page targets", children=[
        dcc.Interval(id="targets-refresh", interval=2 * dashboard_settings().refresh_ms),
        dcc.Store(id="targets-drawn"),  # what the panels were drawn from: a refresh with the same redraws nothing
        html.Div(className="page-head", children=[html.Div(id="targets-breadcrumb", className="breadcrumb")]),
        html.Div(id="targets-error"),
        html.Div(id="targets-panels", className="targets-grid"),
    ])


def _tally(children: list[dict], lang: str) -> html.Div:
    counts = Counter((c.get("target") or {}).get("status", "no_data") for c in children)
    return html.Div(className="tally", children=[
        html.Span([light(s, lang), html.B(f" {counts[s]}")]) for s in STATUSES if counts[s]])


def deadline_note(progress: dict, lang: str) -> str:
    """How long is left: days to the deadline, due today, or days past it (overdue when not met)."""
    days = progress.get("days_left")
    if days is None:
        return ""
    if days > 0:
        return t("targets.days_left", lang).format(n=days)
    if days == 0:
        return t("targets.due_today", lang)
    return t("targets.overdue" if progress.get("overdue") else "targets.closed", lang).format(n=-days)


def target_panel(progress: dict, info: dict, base: str, lang: str) -> html.Section:
    """A target's header (bar, deadline and time left, standing, tally) and its league table with exports."""
    target, unit = progress["target"], info.get("unit", "")
    status = progress["scope_status"]
    rows = [[c["rank"], dcc.Link(c["name"], href=href("/targets", c["level"], c["code"])),
             fmt_value(c["value"], unit, lang), light((c.get("target") or {}).get("status"), lang),
             fmt_gap((c.get("target") or {}).get("gap"), unit, lang)] for c in progress["children"]]
    header = html.Div(className="target-head", children=[
        panel_head(figure_name(info, lang), export_buttons("targets", f"{base}/targets", lang, target_id=target["id"])),
        html.Div(className="target-facts", children=[
            html.Span(f"{t('target', lang)} {target['comparator']} {fmt_value(target['value'], unit, lang)}"),
            html.Span(f"{t('deadline', lang)} {target['deadline']}"),
            html.Span(deadline_note(progress, lang), id=f"targets-deadline-{target['id']}"),
            html.Span(f"{t('set_on', lang)} {target['set_on']['name']}"),
        ]),
        html.Div(className="target-standing", children=[
            html.Span(t("targets.scope_value", lang) + " "),
            html.B(fmt_value(progress["scope_value"], unit, lang), className="standing-value"),
            light(status["status"], lang),
            html.Span(f"{t('gap', lang)} {fmt_gap(status.get('gap'), unit, lang)}", className="muted"),
        ]),
        _tally(progress["children"], lang),
        html.Div(target.get("note") or "", className="muted"),
    ])
    league = table([t("rank", lang), t("name", lang), t("value", lang), t("status", lang), t("gap", lang)], rows,
                   lang, f"targets-table-{target['id']}")
    return html.Section(className="panel target-panel", children=[header, html.Div(league, className="scroll")])


@callback(
    Output("targets-breadcrumb", "children"), Output("targets-panels", "children"),
    Output("targets-error", "children"), Output("targets-drawn", "data"),
    Input("targets-refresh", "n_intervals"), Input("url", "search"), Input("lang", "data"), State("session", "data"),
    State("targets-drawn", "data"),
)
@page_callback("targets-error-message", lambda box, **_: ([], [], box, None))
def refresh(_n: int | None, search: str | None, lang: str, session: dict, drawn: str | None = None):
    """Fetch the targets of the scope and their league tables; draw them again only when they changed.

    Redrawing unchanged panels would replace every export button, which fires the download callback
    each refresh: the page would never be at rest."""
    base = api_path(*requested_scope(search, session))
    scope = api_client.get(session["token"], base)
    progress = api_client.get(session["token"], f"{base}/targets")
    catalogue = {f["key"]: f for f in api_client.get(session["token"], "/api/v1/targets-catalogue")}
    digest = hashlib.sha256(json.dumps([lang, session["user"], scope, progress, catalogue], sort_keys=True, default=str)
                            .encode()).hexdigest()
    if digest == drawn:
        raise dash.exceptions.PreventUpdate
    panels = [target_panel(p, catalogue.get(p["target"]["figure"], {"key": p["target"]["figure"]}), base, lang)
              for p in progress]
    if not panels:
        panels = [html.Div([empty(lang), html.Div(t("targets.none", lang), className="muted")], className="panel")]
    return breadcrumb(scope, session["user"], "/targets", "targets"), panels, None, digest
