"""三个课堂 The three classrooms: opening rate this week, the weekly trend, lessons live now, recent sessions."""

import math

import dash
from dash import Input, Output, State, callback, dcc, html

from dashboard import api_client, lesson_figures
from dashboard.components import (
    change_note,
    export_buttons,
    graph,
    light,
    panel,
    panel_head,
    period_label,
    table,
    tile,
    turned_page,
)
from dashboard.figures import GRADE_STATUS, Bands, bands_of, rate_colour
from dashboard.i18n import DEFAULT_LANG, fmt_count, fmt_number, fmt_rate, fmt_time, local_time, t
from dashboard.page import page_callback
from dashboard.scope import SCOPE_ROUTE, api_path, breadcrumb, href, period_params, requested_scope
from dashboard.settings import dashboard_settings

dash.register_page(__name__, path="/lessons", title="三个课堂 · 教育信息化数字驾驶舱", order=4,
                   nav="nav.lessons", api_route=f"{SCOPE_ROUTE}/lessons/summary")

STATUS_LIGHT = {"held": "met", "scheduled": "no_data", "partial": "behind", "interrupted": "behind", "missed": "missed"}
KINDS = ("dedicated", "master", "elite")
SESSIONS_PAGE = 30


def layout(**_query) -> html.Div:
    """Headline tiles, weekly trend, opening rate by kind, children, live lessons and recent sessions."""
    return html.Div(className="page lessons", children=[
        dcc.Interval(id="lessons-refresh", interval=dashboard_settings().refresh_ms),
        html.Div(className="page-head", children=[
            html.Div(id="lessons-breadcrumb", className="breadcrumb"), html.Div(id="lessons-as-of", className="muted")]),
        html.Div(id="lessons-error"),
        html.Div(id="lessons-content", children=[
            html.Div(id="lessons-tiles", className="tiles"),
            html.Div(className="grid-3", children=[
                panel(graph("lessons-weekly", 330)), panel(graph("lessons-kinds", 330)),
                panel(html.Div(id="lessons-children", className="scroll table-330"))]),
            html.Div(className="grid-2", children=[
                panel(html.Div(id="lessons-live", className="scroll table-300")),
                panel(html.Div([
                    html.Div(className="toolbar session-filters", style={"flexWrap": "nowrap", "gap": "8px"}, children=[
                        dcc.Input(id="lessons-day", type="date", debounce=True, style={"width": "150px"}),
                        dcc.Dropdown(id="lessons-kind", options=kind_options(DEFAULT_LANG), value="", clearable=False,
                                     searchable=False, style={"width": "150px", "minWidth": "150px"}),
                        dcc.Dropdown(id="lessons-status", options=status_options(DEFAULT_LANG), value="",
                                     clearable=False, searchable=False, style={"width": "150px", "minWidth": "150px"}),
                        html.Button(id="lessons-prev", className="secondary small push-right", n_clicks=0),
                        html.Span(id="lessons-sessions-count", className="muted", style={"whiteSpace": "nowrap"}),
                        html.Button(id="lessons-next", className="secondary small", n_clicks=0)]),
                    html.Div(id="lessons-sessions", className="scroll table-300"),
                    dcc.Store(id="lessons-page", data=1)]), title=html.Span(id="lessons-sessions-title"),
                    tools=html.Div(id="lessons-sessions-export", className="panel-tools"))]),
        ]),
    ])


def kind_options(lang: str) -> list[dict]:
    """Lesson kinds to filter the sessions by (empty value: every kind)."""
    return [{"label": t("which.all_kinds", lang), "value": ""}] + [
        {"label": t(f"lessons.kind.{k}", lang), "value": k} for k in KINDS]


def status_options(lang: str) -> list[dict]:
    """Session states to filter by (empty value: every state)."""
    return [{"label": t("which.all_states", lang), "value": ""}] + [
        {"label": t(f"session.{s}", lang), "value": s} for s in STATUS_LIGHT]


def _all(figures: list[dict]) -> dict:
    return next(f for f in figures if f["kind"] == "all")


def compared(figs: dict, previous: dict | None, key: str, unit: str, lang: str) -> str | None:
    """A tile's note on the previous period (see change_note), when there is a previous period."""
    if previous is None:
        return None
    before, now = previous.get(key), figs.get(key)
    change = None if before is None or now is None else now - before
    return change_note({"previous": before, "change": change}, unit, lang)


def lesson_tiles(figs: dict, lang: str, bands: Bands | None, previous: dict | None = None) -> list:
    """This week's (or the period's) headline numbers of the three classrooms; with the previous period's
    figures, the rates and counts also say how they compare."""
    rate = figs["opening_rate"]
    return [
        tile(t("lessons.opening_rate", lang), fmt_rate(rate), "lessons-opening-rate",
             GRADE_STATUS[bands.grade(rate) if bands else None],
             compare=compared(figs, previous, "opening_rate", "ratio", lang)),
        tile(t("lessons.held_past", lang), f"{fmt_count(figs['sessions_held'], lang)} / "
             f"{fmt_count(figs['sessions_past'], lang)}", "lessons-held"),
        tile(t("lessons.hours", lang), fmt_number(figs["hours_delivered"], 1, t("unit.hours", lang)), "lessons-hours"),
        tile(t("lessons.reach", lang), fmt_rate(figs["teaching_point_reach"]), "lessons-reach",
             note=f"{figs['teaching_points_reached']} / {figs['teaching_points']}"),
        tile(t("lessons.quota", lang), fmt_rate(figs["pairs_quota_rate"]), "lessons-quota",
             note=f"{figs['pairs_meeting_quota']} / {figs['pairs']}"),
        tile(t("lessons.interrupted", lang), fmt_count(figs["sessions_interrupted"], lang), "lessons-interrupted",
             compare=compared(figs, previous, "sessions_interrupted", "count", lang)),
    ]


def children_table(children: list[dict], lang: str, bands: Bands | None) -> html.Table:
    """Each child's opening rate, held / due sessions and teaching-point reach this week."""
    rows = []
    for c in children:
        f = _all(c["figures"])
        rows.append([dcc.Link(c["name"], href=href("/lessons", c["level"], c["code"])),
                     html.Span(fmt_rate(f["opening_rate"]), style={"color": rate_colour(f["opening_rate"], bands)}),
                     f"{f['sessions_held']} / {f['sessions_past']}", fmt_rate(f["teaching_point_reach"])])
    return table([t("name", lang), t("lessons.opening_rate", lang), t("lessons.held_past", lang),
                  t("lessons.reach", lang)], rows, lang, "lessons-children-table")


def live_table(live: list[dict], lang: str) -> html.Table:
    """Lessons in progress: subject, main classroom state, receivers joined and online."""
    rows = [[f"{local_time(s['scheduled_start']):%H:%M}–{local_time(s['scheduled_end']):%H:%M}", s["subject"],
             t(f"lessons.kind.{s['kind']}", lang), s["main_school_name"],
             html.Span(t("device.streaming" if s["main_streaming"] else "device.online" if s["main_online"]
                         else "device.offline", lang), className="state-on" if s["main_streaming"] else "state-off"),
             f"{sum(r['joined'] for r in s['receivers'])} / {len(s['receivers'])}"] for s in live]
    return table([t("lessons.slot", lang), t("lessons.subject", lang), t("lessons.kind", lang),
                  t("lessons.main_school", lang), t("lessons.main_state", lang), t("lessons.receivers", lang)],
                 rows, lang, "lessons-live-table")


def sessions_table(page: dict, lang: str) -> html.Table:
    """The latest sessions with their status and receivers."""
    rows = [[fmt_time(s["scheduled_start"]), s["subject"], t(f"lessons.kind.{s['kind']}", lang),
             s["main_school_name"], light(STATUS_LIGHT[s["status"]], lang, t(f"session.{s['status']}", lang)),
             f"{s['receivers_joined']} / {s['receivers_expected']}"] for s in page["items"]]
    return table([t("time", lang), t("lessons.subject", lang), t("lessons.kind", lang),
                  t("lessons.main_school", lang), t("status", lang), t("lessons.receivers", lang)], rows, lang,
                 "lessons-sessions-table")


@callback(
    Output("lessons-breadcrumb", "children"), Output("lessons-tiles", "children"),
    Output("lessons-weekly", "figure"), Output("lessons-kinds", "figure"), Output("lessons-children", "children"),
    Output("lessons-live", "children"), Output("lessons-as-of", "children"),
    Output("lessons-error", "children"), Output("lessons-content", "hidden"),
    Input("lessons-refresh", "n_intervals"), Input("url", "search"), Input("lang", "data"), State("session", "data"),
)
@page_callback("lessons-error-message", lambda box, **_: ([], [], {}, {}, [], [], "", box, True))
def refresh(_n, search, lang, session):
    """Fetch this week's summary, the weekly trend and live lessons (the sessions have a callback of their own)."""
    base, token = f"{api_path(*requested_scope(search, session))}/lessons", session["token"]
    period = period_params(search)
    summary = api_client.get(token, f"{base}/summary", **period)
    weekly = api_client.get(token, f"{base}/weekly", **(period or {"weeks": 12}))
    live = api_client.get(token, f"{base}/live")
    figs = _all(summary["figures"])
    previous = _all(summary["previous"]) if period and summary.get("previous") else ({} if period else None)
    return (
        breadcrumb(summary["scope"], session["user"], "/lessons", "lessons"),
        lesson_tiles(figs, lang, bands_of(summary.get("opening_rate_bands")), previous),
        lesson_figures.weekly_figure(weekly, t("lessons.weekly", lang), lang),
        lesson_figures.kinds_figure(summary["figures"], t("lessons.by_kind", lang), lang),
        [panel_head(t("lessons.children", lang), export_buttons("lesson_children", f"{base}/summary", lang, **period)),
         children_table(summary["children"], lang, bands_of(summary.get("opening_rate_bands")))],
        [panel_head(t("lessons.live", lang), export_buttons("live", f"{base}/live", lang)), live_table(live, lang)],
        f"{period_label(summary.get('period'), lang) if period else t('lessons.week', lang) + ' ' + summary['week']}"
        f" · {t('as_of', lang)} {fmt_time(summary['as_of'], seconds=True)}",
        None, False,
    )


def session_filters(search: str | None, day: str | None, kind: str | None, status: str | None) -> dict:
    """The API's filters of the session list: a day picked (else the URL's period, else the API's last
    7 days), a lesson kind and a session state."""
    days = {"day_from": day, "day_to": day} if day else period_params(search)
    return {**days, **({"kind": kind} if kind else {}), **({"status": status} if status else {})}


def sessions_count(page: dict, lang: str) -> str:
    """Which sessions of how many the page shows, and the days they were looked for on."""
    days = {"day_from": page["day_from"], "day_to": page["day_to"]}
    if not page["total"]:
        return t("which.sessions.none", lang).format(**days)
    first = (page["page"] - 1) * page["page_size"] + 1
    first, last = (first, first + len(page["items"]) - 1) if page["items"] else ("—", "—")  # past the last page
    return t("which.sessions.shown", lang).format(first=first, last=last, total=fmt_count(page["total"], lang), **days)


@callback(Output("lessons-kind", "options"), Output("lessons-status", "options"), Output("lessons-prev", "children"),
          Output("lessons-next", "children"), Output("lessons-sessions-title", "children"), Input("lang", "data"))
@page_callback(needs_session=False)
def session_words(lang: str):
    """The session filters' and pager's words in the chosen language."""
    return kind_options(lang), status_options(lang), t("prev", lang), t("next", lang), t("which.sessions.title", lang)


@callback(Output("lessons-page", "data"), Input("lessons-prev", "n_clicks"), Input("lessons-next", "n_clicks"),
          Input("lessons-day", "value"), Input("lessons-kind", "value"), Input("lessons-status", "value"),
          Input("url", "search"), State("lessons-page", "data"), prevent_initial_call=True)
def turn_sessions_page(_prev, _next, _day, _kind, _status, _search, page: int):
    """Next or previous page of sessions; back to the first when a filter or the URL changes."""
    return turned_page("lessons", page)


@callback(
    Output("lessons-sessions", "children"), Output("lessons-sessions-count", "children"),
    Output("lessons-sessions-export", "children"), Output("lessons-prev", "disabled"), Output("lessons-next", "disabled"),
    Input("lessons-refresh", "n_intervals"), Input("url", "search"), Input("lang", "data"), Input("lessons-page", "data"),
    Input("lessons-day", "value"), Input("lessons-kind", "value"), Input("lessons-status", "value"),
    State("session", "data"),
)
@page_callback("lessons-sessions-error", lambda box, **_: (box, "", [], True, True), back=False)
def sessions(_n, search, lang, page, day, kind, status, session):
    """One page of the sessions that match the filters, with how many match in all; the export holds them all."""
    base = f"{api_path(*requested_scope(search, session))}/lessons/sessions"
    filters = session_filters(search, day, kind, status)
    found = api_client.get(session["token"], base, page=page or 1, page_size=SESSIONS_PAGE, **filters)
    pages = max(1, math.ceil(found["total"] / SESSIONS_PAGE))
    return (sessions_table(found, lang), sessions_count(found, lang), export_buttons("sessions", base, lang, **filters),
            found["page"] <= 1, found["page"] >= pages)
