"""智能巡检 Smart patrol: open alerts and who handles them, work orders, patrol rounds and 巡课.

Operations staff act here: acknowledge an alert, open a work order from it, run a patrol
round now and download its report. Every action goes through the API with the user's
token, so the API's role and scope checks decide; its refusal is shown as it is.
"""

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc, html

from dashboard import api_client
from dashboard.components import export_buttons, graph, panel, table, tile
from dashboard.i18n import fmt_count, fmt_time, t
from dashboard.page import page_callback
from dashboard.patrol_figures import schools_figure
from dashboard.scope import SCOPE_ROUTE, api_path, breadcrumb, requested_scope
from dashboard.settings import dashboard_settings

dash.register_page(__name__, path="/patrol", title="智能巡检 · 教育信息化数字驾驶舱", order=6,
                   nav="nav.patrol", api_route=f"{SCOPE_ROUTE}/alerts")

ACTING_ROLES = {"admin", "manager", "operations"}  # the roles the API lets act on alerts
ALERT_ROWS = 200
SEVERITY_STATUS = {"critical": "missed", "major": "behind", "warning": "behind", "info": "no_data"}


def layout(**_query) -> html.Div:
    """Tiles, live alerts beside the worst schools, work orders beside patrol rounds, and 巡课."""
    return html.Div(className="page patrol", children=[
        dcc.Interval(id="patrol-refresh", interval=dashboard_settings().refresh_ms),
        dcc.Store(id="patrol-changed", data=0),  # bumped after an action so the tables re-read at once
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
        html.Div(className="grid-2", children=[
            panel(html.Div(id="patrol-orders", className="scroll table-300"), title=html.Span(id="patrol-orders-title"),
                  tools=[html.Div(id="patrol-orders-tools")]),
            panel(html.Div(id="patrol-rounds", className="scroll table-300"), title=html.Span(id="patrol-rounds-title"))]),
        panel(html.Div(id="patrol-classrooms", className="scroll table-300"),
              title=html.Span(id="patrol-classrooms-title")),
    ])


def _duration(seconds: float | None, lang: str) -> str:
    if seconds is None:
        return "—"
    minutes = seconds / 60
    if minutes < 90:
        return f"{minutes:.0f} 分钟" if lang == "zh" else f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} 小时" if lang == "zh" else f"{minutes / 60:.1f} h"


def patrol_tiles(summary: dict, times: list[dict], lang: str) -> list:
    """Open alerts by severity, how many are grouped under a root cause, and response times."""
    by = summary["by_severity"]
    speed = times[0] if times else {}
    return [
        tile(t("open_alerts", lang), fmt_count(summary["open"], lang), "patrol-open",
             "missed" if by.get("critical") else "behind" if summary["open"] else "met"),
        *[tile(t(f"severity.{level}", lang), fmt_count(by.get(level, 0), lang), f"patrol-{level}",
               SEVERITY_STATUS[level] if by.get(level) else "met") for level in ("critical", "major", "warning")],
        tile(t("patrol.inhibited", lang), fmt_count(summary["inhibited"], lang), "patrol-inhibited"),
        tile(t("patrol.mtta", lang), _duration(speed.get("mtta_s"), lang), "patrol-mtta"),
        tile(t("patrol.mttr", lang), _duration(speed.get("mttr_s"), lang), "patrol-mttr"),
    ]


def _action(kind: str, alert_id: int, label: str) -> html.Button:
    return html.Button(label, id={"type": f"patrol-{kind}", "alert": alert_id}, n_clicks=0, className="small")


def alert_rows(alerts: list[dict], lang: str, acting: bool) -> list[list]:
    """One row per alert: severity, state, school, room, rule, since, count and what can be done."""
    rows = []
    for a in alerts:
        actions = []
        if acting and a["state"] == "firing":  # the API acknowledges only firing alerts
            actions.append(_action("ack", a["id"], t("patrol.ack", lang)))
        if acting:
            actions.append(_action("order", a["id"], t("patrol.dispatch", lang)))
        rows.append([html.Span(t(f"severity.{a['severity']}", lang), className=f"light light-{SEVERITY_STATUS[a['severity']]}"),
                     t(f"alert.state.{a['state']}", lang), a["school_name"], a["room"] or "—", a["rule_title"],
                     fmt_time(a["first_seen"]), a["count"], html.Span(actions, className="actions")])
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
    times = api_client.get(token, f"{base}/response-times", days=30)
    alerts = api_client.get(token, f"{base}/alerts", limit=ALERT_ROWS)
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
    return (breadcrumb(scope, session["user"], "/patrol", "patrol"), patrol_tiles(summary, times, lang),
            alert_table,
            export_buttons("alerts", f"{base}/alerts", lang, limit=5000),
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
        message = f"{t('error.api', lang)} {exc}"
    return message, (changed or 0) + 1  # the tables re-read either way
