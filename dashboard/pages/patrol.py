"""智能巡检 Smart patrol: open alerts and who handles them, work orders, patrol rounds and 巡课.

Operations staff act here: acknowledge an alert, open a work order from it, run a patrol
round now and download its report. Every action goes through the API with the user's
token, so the API's role and scope checks decide; its refusal is shown as it is.
"""

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc, html

from dashboard import api_client
from dashboard.components import error_message, export_buttons, graph, panel, table, tile
from dashboard.i18n import fmt_count, fmt_duration, fmt_time, t
from dashboard.page import page_callback
from dashboard.patrol_figures import schools_figure
from dashboard.scope import SCOPE_ROUTE, api_path, breadcrumb, period_params, requested_scope
from dashboard.settings import dashboard_settings

dash.register_page(__name__, path="/patrol", title="智能巡检 · 教育信息化数字驾驶舱", order=6,
                   nav="nav.patrol", api_route=f"{SCOPE_ROUTE}/alerts")

ACTING_ROLES = {"admin", "manager", "operations"}  # the roles the API lets act on alerts
ALERT_ROWS = 200
# The alerts the page lists are the ones its tiles count (the API's alert summary and by-school
# counts): fired and not yet resolved, not grouped under a root cause. Pending alerts (the
# condition seen, not yet for the rule's duration: no one has been told) are not alerts yet.
LISTED_STATES = ("firing", "acknowledged")
SEVERITY_STATUS = {"critical": "missed", "major": "behind", "warning": "behind", "info": "no_data"}


def layout(**_query) -> html.Div:
    """Tiles, live alerts beside the worst schools, work orders beside patrol rounds, and 巡课."""
    return html.Div(className="page patrol", children=[
        dcc.Interval(id="patrol-refresh", interval=dashboard_settings().refresh_ms),
        dcc.Store(id="patrol-changed", data=0),  # bumped after an action so the tables re-read at once
        dcc.Store(id="patrol-root", data=None),  # the alert whose grouped alerts are open below the list
        html.Div(className="page-head", children=[
            html.Div(id="patrol-breadcrumb", className="breadcrumb"),
            html.Div(className="panel-tools", children=[
                html.Span(id="patrol-message", className="muted", role="status"),
                html.Button(id="patrol-run", n_clicks=0, style={"display": "none"})]),  # shown to acting roles
        ]),
        html.Div(id="patrol-error"),
        html.Div(id="patrol-tiles", className="tiles"),
        html.Div(className="grid-2", children=[
            panel(html.Div(id="patrol-alerts", className="scroll table-330"), title=html.Span(id="patrol-alerts-title"),
                  tools=[html.Div(id="patrol-alerts-tools")]),
            panel(graph("patrol-schools", 380))]),
        html.Div(id="patrol-grouped", hidden=True, children=panel(
            html.Div(id="patrol-grouped-body", className="scroll table-300"), title=html.Span(id="patrol-grouped-title"),
            tools=[html.Div(id="patrol-grouped-export", className="panel-tools"),
                   html.Button(id="patrol-grouped-close", n_clicks=0, className="secondary small")])),
        html.Div(className="grid-2", children=[
            panel(html.Div(id="patrol-orders", className="scroll table-300"), title=html.Span(id="patrol-orders-title"),
                  tools=[html.Div(id="patrol-orders-tools")]),
            panel(html.Div(id="patrol-rounds", className="scroll table-300"), title=html.Span(id="patrol-rounds-title"))]),
        panel(html.Div(id="patrol-classrooms", className="scroll table-300"),
              title=html.Span(id="patrol-classrooms-title")),
    ])


def mean_time(speed: dict, key: str, count: str, lang: str) -> tuple[str, str | None]:
    """A mean response time and what it is over ("—" and no note when no alert got that far:
    a mean over nothing is no data, not 0 minutes)."""
    if count not in speed:  # no count to go by: the mean as the API gives it
        return fmt_duration(speed.get(key), lang), None
    n = speed[count]
    if not n:
        return fmt_duration(None, lang), None
    return fmt_duration(speed.get(key), lang), t("patrol.based_on", lang).format(n=fmt_count(n, lang))


def state_counts(summary: dict, alerts: list[dict] | None = None) -> dict[str, int] | None:
    """Listed alerts by state: the API's own count when it sends one (summary.by_state), else
    counted from the list when the list is whole; None when neither says."""
    if isinstance(summary.get("by_state"), dict):
        return {s: int(summary["by_state"].get(s, 0)) for s in ("pending", *LISTED_STATES)}
    if alerts is not None and len(alerts) < ALERT_ROWS:
        return {s: sum(1 for a in alerts if a["state"] == s) for s in LISTED_STATES}
    return None


def patrol_tiles(summary: dict, times: list[dict], lang: str, alerts: list[dict] | None = None) -> list:
    """Open alerts (those listed below) by state and severity, how many are grouped under a root cause
    (not listed), and response times over the alerts they are a mean of."""
    by = summary["by_severity"]
    speed = times[0] if times else {}
    states = state_counts(summary, alerts)
    split = t("patrol.by_state", lang).format(firing=fmt_count(states["firing"], lang),
                                              acknowledged=fmt_count(states["acknowledged"], lang)) if states else None
    mtta, mtta_note = mean_time(speed, "mtta_s", "acknowledged", lang)
    mttr, mttr_note = mean_time(speed, "mttr_s", "resolved", lang)
    tiles = [
        tile(t("open_alerts", lang), fmt_count(summary["open"], lang), "patrol-open",
             "missed" if by.get("critical") else "behind" if summary["open"] else "met", split),
        *[tile(t(f"severity.{level}", lang), fmt_count(by.get(level, 0), lang), f"patrol-{level}",
               SEVERITY_STATUS[level] if by.get(level) else "met")
          for level in ("critical", "major", "warning", *(("info",) if by.get("info") else ()))],
        tile(t("patrol.inhibited", lang), fmt_count(summary["inhibited"], lang), "patrol-inhibited",
             note=t("patrol.not_listed", lang)),
        tile(t("patrol.mtta", lang), mtta, "patrol-mtta", note=mtta_note),
        tile(t("patrol.mttr", lang), mttr, "patrol-mttr", note=mttr_note),
    ]
    if states and "pending" in states:  # only the API can count them: the page does not list them
        tiles.insert(1, tile(t("patrol.pending", lang), fmt_count(states["pending"], lang), "patrol-pending",
                             note=t("patrol.pending.note", lang)))
    return tiles


def alerts_note(summary: dict, alerts: list[dict], lang: str) -> html.Div | None:
    """Says so when the list shows fewer alerts than the tiles count (the rest are in the export)."""
    if len(alerts) >= summary["open"]:
        return None
    return html.Div(t("table.more", lang).format(shown=fmt_count(len(alerts), lang),
                                                 total=fmt_count(summary["open"], lang)),
                    className="muted table-note", id="patrol-alerts-note")


def _action(kind: str, alert_id: int, label: str) -> html.Button:
    return html.Button(label, id={"type": f"patrol-{kind}", "alert": alert_id}, n_clicks=0, className="small")


def grouped_opener(alert: dict, lang: str):
    """The alert's count of reports, and when alerts are grouped under it, a link that lists them (no href:
    a change of the address's hash would redraw the page and close the list again)."""
    if not alert.get("grouped"):
        return alert["count"]
    return [alert["count"], " · ", html.A(t("which.grouped", lang).format(n=fmt_count(alert["grouped"], lang)),
                                           id={"type": "patrol-grouped", "alert": alert["id"]}, n_clicks=0,
                                           className="grouped-link", role="button", tabIndex="0",
                                           style={"color": "#7fd3ff", "cursor": "pointer"})]


def alert_rows(alerts: list[dict], lang: str, acting: bool) -> list[list]:
    """One row per alert: severity, state, school, room, rule, since, count (with the alerts grouped under
    it) and what can be done."""
    rows = []
    for a in alerts:
        actions = []
        if acting and a["state"] == "firing":  # the API acknowledges only firing alerts
            actions.append(_action("ack", a["id"], t("patrol.ack", lang)))
        if acting:
            actions.append(_action("order", a["id"], t("patrol.dispatch", lang)))
        rows.append([html.Span(t(f"severity.{a['severity']}", lang), className=f"light light-{SEVERITY_STATUS[a['severity']]}"),
                     t(f"alert.state.{a['state']}", lang), a["school_name"], a["room"] or "—", a["rule_title"],
                     fmt_time(a["first_seen"]), grouped_opener(a, lang), html.Span(actions, className="actions")])
    return rows


def order_rows(orders: list[dict], lang: str) -> list[list]:
    """Work orders newest first; an overdue one says so."""
    return [[o["id"], t(f"order.status.{o['status']}", lang)
             + (f" · {t('patrol.overdue', lang)}" if o.get("overdue") else ""),
             o["title"], o["assignee"] or "—", fmt_time(o["created_at"]), fmt_time(o["deadline"])]
            for o in orders]


def round_rows(rounds: list[dict], lang: str) -> list[list]:
    """Patrol rounds newest first with what they found and the report to download."""
    rows = []
    for r in rounds:
        s = r["summary"] or {}
        report = html.Button(t("patrol.report", lang) + " Excel", className="export", n_clicks=0,
                             id={"type": "export", "table": "patrol-round", "fmt": "xlsx", "query": "",
                                 "path": f"/api/v1/patrol/rounds/{r['id']}"})
        rows.append([r["id"], fmt_time(r["started_at"]), t(f"patrol.trigger.{r['trigger']}", lang),
                     s.get("open", "—"), s.get("new", "—"), s.get("cleared", "—"), report])
    return rows


def _cameras(cameras: list[dict] | None) -> str:
    if not cameras:
        return "—"
    return f"{sum(1 for c in cameras if c.get('online'))} / {len(cameras)}"


def classroom_rows(rooms: list[dict], lang: str) -> list[list]:
    """Rooms in a remote lesson now: main rooms with their cameras, receiving rooms."""
    return [[t(f"patrol.role.{r['role']}", lang), r["school_name"], r["room"] or "—", r["subject"] or "—",
             r["lesson_id"] or "—", _cameras(r["cameras"]), fmt_time(r["last_seen"], seconds=True)] for r in rooms]


@callback(Output("patrol-run", "children"), Output("patrol-run", "style"), Output("patrol-alerts-title", "children"),
          Output("patrol-orders-title", "children"), Output("patrol-rounds-title", "children"),
          Output("patrol-classrooms-title", "children"), Input("lang", "data"), Input("session", "data"))
@page_callback(needs_session=False)
def words(lang: str, session: dict | None):
    """Panel titles and the run button's word; the button hidden from roles that may not run rounds."""
    acting = bool(session) and session["user"]["role"] in ACTING_ROLES
    return (t("patrol.run", lang), None if acting else {"display": "none"}, t("patrol.alerts", lang),
            t("patrol.orders", lang), t("patrol.rounds", lang), t("patrol.classrooms", lang))


@callback(
    Output("patrol-breadcrumb", "children"), Output("patrol-tiles", "children"), Output("patrol-alerts", "children"),
    Output("patrol-alerts-tools", "children"), Output("patrol-schools", "figure"),
    Output("patrol-orders", "children"), Output("patrol-orders-tools", "children"),
    Output("patrol-rounds", "children"), Output("patrol-classrooms", "children"), Output("patrol-error", "children"),
    Input("patrol-refresh", "n_intervals"), Input("patrol-changed", "data"), Input("url", "search"),
    Input("lang", "data"), State("session", "data"),
)
@page_callback("patrol-error-message", lambda box, **_: ([], [], [], [], dash.no_update, [], [], [], [], box))
def refresh(_n, _changed, search, lang, session):
    """Everything the page shows, re-read from the API on every tick and after every action."""
    token, base = session["token"], api_path(*requested_scope(search, session))
    scope = api_client.get(token, base)
    summary = api_client.get(token, f"{base}/alerts/summary")
    times = api_client.get(token, f"{base}/response-times", **(period_params(search) or {"days": 30}))
    alerts = api_client.get(token, f"{base}/alerts", state=list(LISTED_STATES), limit=ALERT_ROWS)
    schools = api_client.get(token, f"{base}/alerts/by-school")
    orders = api_client.get(token, f"{base}/work-orders")
    rounds = api_client.get(token, f"{base}/patrol/rounds")
    rooms = api_client.get(token, f"{base}/patrol/classrooms")
    acting = session["user"]["role"] in ACTING_ROLES
    alert_table = table([t("severity", lang), t("status", lang), t("school", lang), t("device.room", lang),
                         t("patrol.rule", lang), t("patrol.since", lang), t("patrol.count", lang),
                         t("patrol.actions", lang)], alert_rows(alerts, lang, acting), lang, "patrol-alert-list")
    order_table = table(["#", t("status", lang), t("name", lang), t("patrol.assignee", lang),
                         t("time", lang), t("deadline", lang)], order_rows(orders, lang), lang, "patrol-order-list")
    round_table = table(["#", t("time", lang), t("type", lang), t("patrol.findings", lang), t("patrol.new", lang),
                         t("patrol.cleared", lang), t("patrol.report", lang)], round_rows(rounds, lang), lang,
                        "patrol-round-list")
    room_table = table([t("type", lang), t("school", lang), t("device.room", lang), t("patrol.subject", lang),
                        "ID", t("patrol.cameras", lang), t("device.last_seen", lang)], classroom_rows(rooms, lang),
                       lang, "patrol-classroom-list")
    return (breadcrumb(scope, session["user"], "/patrol", "patrol"), patrol_tiles(summary, times, lang, alerts),
            [alert_table, alerts_note(summary, alerts, lang)],
            export_buttons("alerts", f"{base}/alerts", lang, state=list(LISTED_STATES), limit=5000),
            schools_figure(schools, t("patrol.schools", lang), lang),
            order_table,
            export_buttons("work_orders", f"{base}/work-orders", lang),
            round_table, room_table, None)


def act(token: str, kind: str, alert_id: int, lang: str) -> str:
    """Acknowledge an alert or open a work order from it; what happened, in words."""
    if kind == "patrol-ack":
        api_client.post(token, f"/api/v1/alerts/{alert_id}/ack", {})
        return t("patrol.acked", lang).format(id=alert_id)
    order = api_client.post(token, f"/api/v1/alerts/{alert_id}/work-order", {})
    return t("patrol.dispatched", lang).format(id=alert_id, order=order["id"])


@callback(Output("patrol-message", "children"), Output("patrol-changed", "data"),
          Input({"type": "patrol-ack", "alert": ALL}, "n_clicks"), Input({"type": "patrol-order", "alert": ALL}, "n_clicks"),
          Input("patrol-run", "n_clicks"), State("url", "search"), State("session", "data"), State("lang", "data"),
          State("patrol-changed", "data"), prevent_initial_call=True)
@page_callback()
def on_action(_acks, _orders, _runs, search, session, lang, changed):
    """Carry out the clicked action through the API; show its outcome or its refusal."""
    trigger = ctx.triggered_id
    if not trigger or not ctx.triggered[0]["value"]:  # a table re-render, not a click
        raise dash.exceptions.PreventUpdate
    try:
        if trigger == "patrol-run":
            done = api_client.post(session["token"], f"{api_path(*requested_scope(search, session))}/patrol/rounds", {})
            message = t("patrol.ran", lang).format(id=done["id"])
        else:
            message = act(session["token"], trigger["type"], trigger["alert"], lang)
    except api_client.ApiError as exc:  # said in the status line beside the button, not in the page's error panel
        message = error_message(exc, lang)
    return message, (changed or 0) + 1  # the tables re-read either way


def grouped_table(rows: list[dict], lang: str) -> html.Table:
    """The alerts grouped under one root cause: severity, state, where, what, since when."""
    return table([t("severity", lang), t("status", lang), t("school", lang), t("device.room", lang),
                  t("patrol.rule", lang), t("patrol.since", lang), t("patrol.count", lang)],
                 [[html.Span(t(f"severity.{a['severity']}", lang),
                             className=f"light light-{SEVERITY_STATUS[a['severity']]}"),
                   t(f"alert.state.{a['state']}", lang), a["school_name"], a["room"] or "—", a["rule_title"],
                   fmt_time(a["first_seen"]), a["count"]] for a in rows], lang, "patrol-grouped-list")


@callback(Output("patrol-root", "data"), Input({"type": "patrol-grouped", "alert": ALL}, "n_clicks"),
          Input("patrol-grouped-close", "n_clicks"), prevent_initial_call=True)
def open_grouped(_opened, _closed):
    """A click on an alert's grouped count opens its grouped alerts; Close closes them."""
    clicked = [ctx.triggered_prop_ids[t["prop_id"]] for t in ctx.triggered if t["value"]]
    if not clicked:  # the alert list was drawn again, nobody clicked
        raise dash.exceptions.PreventUpdate
    return None if clicked[-1] == "patrol-grouped-close" else clicked[-1]["alert"]


@callback(Output("patrol-grouped", "hidden"), Output("patrol-grouped-title", "children"),
          Output("patrol-grouped-body", "children"), Output("patrol-grouped-export", "children"),
          Output("patrol-grouped-close", "children"),
          Input("patrol-root", "data"), Input("patrol-changed", "data"), Input("lang", "data"), State("session", "data"))
@page_callback("patrol-grouped-error", lambda box, lang, **_: (False, "", box, [], t("which.close", lang)), back=False)
def show_grouped(root: int | None, _changed, lang: str, session: dict):
    """The grouped alerts of the alert opened, read when it is opened and after an action (not on every tick:
    the panel stays still while it is read, and its buttons take every click); hidden while none is open."""
    if root is None:
        return True, "", [], [], t("which.close", lang)
    rows = api_client.get(session["token"], f"/api/v1/alerts/{root}/grouped")
    return (False, t("which.grouped.title", lang).format(id=root), grouped_table(rows, lang),
            export_buttons("grouped", f"/api/v1/alerts/{root}/grouped", lang), t("which.close", lang))
