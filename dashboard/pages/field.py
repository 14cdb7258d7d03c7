"""外勤工单 Field work: the phone page of operations staff, one column made for a 390-pixel screen.

The team's open alerts and work orders, worst and newest first (the API's work queue); one of them
opened (`?alert=` — the link every notice carries — or `?order=`): acknowledge the alert, take
the work (a work order is opened for an alert that has none, then assigned to the caller and
started), add notes and photos of the repair, and resolve it with what was done. Every action
goes through the API with the user's token: its role and scope checks decide, and its refusal
is said in words beside the buttons.
"""

import base64
import binascii
import re
from urllib.parse import urlencode

import dash
from dash import Input, Output, State, callback, ctx, dcc, html

from dashboard import api_client
from dashboard.components import error_message
from dashboard.i18n import fmt_count, fmt_time, t
from dashboard.page import page_callback
from dashboard.scope import SCOPE_ROUTE, api_path, query_values, requested_scope
from dashboard.settings import dashboard_settings

dash.register_page(__name__, path="/field", title="外勤工单 · 教育信息化数字驾驶舱", order=7,
                   nav="nav.field", api_route=f"{SCOPE_ROUTE}/work-queue", roles=("operations", "manager", "admin"))

ACTING_ROLES = {"admin", "manager", "operations"}  # the roles the API lets act on alerts and work orders
QUEUE_SIZE = 100
TAKEABLE = ("open", "in_progress", "rejected")
RESOLVABLE = ("open", "in_progress")  # the API's moves to done
CLOSED = ("accepted", "cancelled")
SEVERITY_LIGHT = {"critical": "missed", "major": "behind", "warning": "behind", "info": "no_data"}
PHOTO_TYPES = {"image/jpeg", "image/png"}
BUTTONS = ("field-ack", "field-take", "field-note-add", "field-resolve")


def layout(**_query) -> html.Div:
    """The opened piece of work (when the address names one) above the queue of all of them."""
    return html.Div(className="page field", children=[
        dcc.Interval(id="field-refresh", interval=dashboard_settings().refresh_ms),
        dcc.Store(id="field-changed", data=0),  # bumped after an action: the list and the detail re-read
        dcc.Store(id="field-target"),  # what is open: {"alert": id, "order": id}
        html.Div(className="field-head", children=[html.H2(id="field-title"),
                                                   html.Span(id="field-counts", className="muted")]),
        html.Div(id="field-error"),
        html.Section(id="field-detail", className="field-detail", hidden=True, children=[
            dcc.Link(id="field-back", href="/field", className="field-back"),
            html.Div(id="field-card"),
            html.Div(id="field-message", className="field-message", role="status"),
            html.Div(className="field-actions", children=[
                html.Button(id="field-ack", n_clicks=0, hidden=True, className="secondary"),
                html.Button(id="field-take", n_clicks=0, hidden=True)]),
            html.Div(id="field-work", hidden=True, children=[
                dcc.Textarea(id="field-note", maxLength=2000, rows=3, className="field-note"),
                html.Div(className="field-actions", children=[
                    html.Button(id="field-note-add", n_clicks=0, className="secondary"),
                    html.Button(id="field-resolve", n_clicks=0, hidden=True, className="good")]),
                dcc.Upload(id="field-photo", accept="image/jpeg,image/png", className="field-upload",
                           children=html.Span(id="field-photo-label"))]),
            html.Div(id="field-history"),
        ]),
        html.Ul(id="field-list", className="field-list"),
    ])


@callback(Output("field-title", "children"), Output("field-back", "children"), Output("field-ack", "children"),
          Output("field-note", "placeholder"), Output("field-note-add", "children"),
          Output("field-resolve", "children"), Output("field-photo-label", "children"), Input("lang", "data"))
@page_callback()
def words(lang: str):
    """The page's words in the chosen language."""
    return (t("field.title", lang), t("field.back", lang), t("field.ack", lang), t("field.note", lang),
            t("field.note.add", lang), t("field.resolve", lang), t("field.photo", lang))


def opened(search: str | None) -> dict:
    """The alert or work order the address names (`?alert=` or `?order=`, whole numbers only)."""
    query = query_values(search)
    return {k: int(query[k]) for k in ("alert", "order") if re.fullmatch(r"[1-9][0-9]{0,17}", query.get(k, ""))}


def item_href(search: str | None, item: dict) -> str:
    """The page opened on a queue item, keeping the scope the address asks about."""
    query = {k: v for k, v in query_values(search).items() if k in ("level", "code")}
    query.update({"order": item["order_id"]} if item["order_id"] else {"alert": item["alert_id"]})
    return "/field?" + urlencode(query)


def severity_light(severity: str | None, lang: str) -> html.Span:
    """The severity as a coloured label (a work order without an alert has none)."""
    if severity is None:
        return html.Span(t("field.order", lang), className="light light-no_data")
    return html.Span(t(f"severity.{severity}", lang), className=f"light light-{SEVERITY_LIGHT[severity]}")


def _state(item: dict, lang: str) -> str:
    if item.get("order_status"):
        return t(f"order.status.{item['order_status']}", lang)
    return t(f"alert.state.{item['alert_state']}", lang)


def _who(assignee: str | None, me: str, lang: str) -> str:
    if not assignee:
        return t("field.unassigned", lang)
    return f"{assignee} ({t('field.me', lang)})" if assignee == me else assignee


def queue_card(item: dict, search: str | None, me: str, lang: str) -> html.Li:
    """One piece of work: severity, what, where, since when, its state and who has it."""
    where = " · ".join(x for x in (item["school_name"], item["room"]) if x)
    state = _state(item, lang) + (f" · {t('patrol.overdue', lang)}" if item["overdue"] else "")
    if item["order_id"]:
        state += f" · {_who(item['assignee'], me, lang)}"
    key = f"order-{item['order_id']}" if item["order_id"] else f"alert-{item['alert_id']}"
    return html.Li(className="field-item" + (" mine" if item["assignee"] == me else ""), children=dcc.Link(
        href=item_href(search, item), id=f"field-item-{key}", children=[
            severity_light(item["severity"], lang), html.B(item["title"], className="what"),
            html.Span(where, className="where"),
            html.Span(f"{fmt_time(item['since'])} · {state}", className="muted")]))


@callback(Output("field-list", "children"), Output("field-counts", "children"), Output("field-error", "children"),
          Input("field-refresh", "n_intervals"), Input("field-changed", "data"), Input("url", "search"),
          Input("lang", "data"), State("session", "data"))
@page_callback("field-error-message", lambda box, **_: ([], "", box))
def refresh(_n, _changed, search, lang, session):
    """The queue of the scope asked about (the user's own by default), re-read on every tick and action."""
    queue = api_client.get(session["token"], f"{api_path(*requested_scope(search, session))}/work-queue",
                           limit=QUEUE_SIZE)
    me = session["user"]["username"]
    cards = [queue_card(item, search, me, lang) for item in queue] or [
        html.Li(t("field.empty", lang), className="empty")]
    counts = t("field.counts", lang).format(n=fmt_count(len(queue), lang),
                                            mine=fmt_count(sum(i["assignee"] == me for i in queue), lang))
    if len(queue) >= QUEUE_SIZE:
        counts += " · " + t("field.more", lang).format(n=QUEUE_SIZE)
    return cards, counts, None


def _photo_src(token: str, photo: dict) -> str:
    content, _ = api_client.download(token, photo["url"])
    return "data:image/jpeg;base64," + base64.b64encode(content).decode()


def history(order: dict | None, token: str, lang: str) -> list:
    """The order's resolution, notes (oldest first) and photos."""
    if order is None:
        return []
    out = []
    if order.get("resolution"):
        out.append(html.P([html.B(t("field.resolution", lang) + ": "), order["resolution"]], id="field-resolution"))
    if order["notes"]:
        out += [html.H4(t("field.notes", lang)), html.Ul(id="field-notes", className="field-notes", children=[
            html.Li([html.Span(f"{fmt_time(n['created_at'])} · {n['author']}", className="muted"),
                     html.Div(n["text"])]) for n in order["notes"]])]
    if order["photos"]:
        out += [html.H4(t("field.photos", lang)), html.Div(id="field-photos", className="field-photos", children=[
            html.Img(src=_photo_src(token, p), alt=f"{t('field.photos', lang)} {p['id']}",
                     title=f"{fmt_time(p['created_at'])} · {p['author']}") for p in order["photos"]])]
    return out


def facts(alert: dict | None, order: dict | None, me: str, lang: str) -> list:
    """What is open, in a few lines: severity and title, where, since, state, who has it."""
    head = order or alert
    where = " · ".join(x for x in (head.get("school_name"), head.get("room"), head.get("device_id")) if x)
    severity = order["severity"] if order else alert["severity"]
    lines = [html.Div([severity_light(severity, lang), " ", html.Span(head.get("title") or alert["summary"],
                                                                    id="field-what", className="what")]),
             html.Div(where, className="where")]
    if alert is not None:
        lines.append(html.Div(f"{t('field.alert', lang)} {alert['id']} · "
                              f"{t('alert.state.' + alert['state'], lang)} · {t('field.since', lang)} "
                              f"{fmt_time(alert['fired_at'] or alert['first_seen'])}", className="muted"))
    if order is not None:
        lines.append(html.Div(
            f"{t('field.order', lang)} {order['id']} · {t('order.status.' + order['status'], lang)} · "
            f"{t('field.assignee', lang)} {_who(order['assignee'], me, lang)}", id="field-order", className="state"))
    return lines


def read_target(token: str, target: dict) -> tuple[dict | None, dict | None]:
    """The alert and the work order the address names (an alert's order found through the alert)."""
    alert = order = None
    if "order" in target:
        order = api_client.get(token, f"/api/v1/work-orders/{target['order']}")
        if order.get("alert_id"):
            alert = api_client.get(token, f"/api/v1/alerts/{order['alert_id']}")
    else:
        alert = api_client.get(token, f"/api/v1/alerts/{target['alert']}")
        if alert.get("work_order_id"):
            order = api_client.get(token, f"/api/v1/work-orders/{alert['work_order_id']}")
    return alert, order


def actions(alert: dict | None, order: dict | None, role: str, me: str, lang: str) -> dict:
    """Which buttons the user gets (the API would refuse the others), and the take button's word."""
    acting = role in ACTING_ROLES
    open_alert = alert is not None and alert["state"] in ("firing", "acknowledged")
    status = order["status"] if order else None
    take = acting and (status in TAKEABLE and not (status == "in_progress" and order["assignee"] == me)
                       or (order is None and open_alert))
    taken_by_other = status == "in_progress" and order["assignee"] not in (None, me)
    return {"ack": acting and alert is not None and alert["state"] == "firing", "take": take,
            "take_word": t("field.take_over" if taken_by_other else "field.take", lang),
            "work": acting and order is not None and status not in CLOSED,
            "resolve": acting and status in RESOLVABLE}


@callback(Output("field-detail", "hidden"), Output("field-card", "children"), Output("field-ack", "hidden"),
          Output("field-take", "hidden"), Output("field-take", "children"), Output("field-work", "hidden"),
          Output("field-resolve", "hidden"), Output("field-history", "children"), Output("field-target", "data"),
          Input("url", "search"), Input("field-changed", "data"), Input("lang", "data"), State("session", "data"))
@page_callback("field-detail-error", lambda box, **_: (False, box, True, True, "", True, True, [], None), back=False)
def detail(search, _changed, lang, session):
    """The opened alert or work order with the buttons the user may press, read when it is opened and after
    every action (not on the refresh tick: the photos are not fetched again and again)."""
    target = opened(search)
    if not target:
        return True, [], True, True, "", True, True, [], None
    token, me, role = session["token"], session["user"]["username"], session["user"]["role"]
    alert, order = read_target(token, target)
    can = actions(alert, order, role, me, lang)
    card = facts(alert, order, me, lang)
    if role not in ACTING_ROLES:
        card.append(html.Div(t("field.read_only", lang), className="muted"))
    elif order is None and can["take"]:
        card.append(html.Div(t("field.no_order", lang), className="muted"))
    return (False, card, not can["ack"], not can["take"], can["take_word"], not can["work"], not can["resolve"],
            history(order, token, lang), {"alert": alert["id"] if alert else None, "order": order and order["id"]})


def _refusal(exc: api_client.ApiError, lang: str, photo: bool = False) -> html.Span:
    """The API's refusal in words; a photo's by what is wrong with it."""
    key = f"field.photo.{exc.status}"
    if photo and exc.status in (409, 413, 415, 422):
        return html.Span(t(key, lang), title=str(exc), className="refused")
    return html.Span(error_message(exc, lang), title=str(exc), className="refused")


def _picture(contents: str) -> tuple[bytes, str] | None:
    """The bytes and media type of an upload's data URL (None when it is not a picture's)."""
    head, _, data = contents.partition(",")
    media_type = head.removeprefix("data:").split(";")[0]
    try:
        return base64.b64decode(data, validate=True), media_type
    except (binascii.Error, ValueError):
        return None


def take(token: str, target: dict, me: str) -> int:
    """Take the work: the alert's work order opened (assigned to the caller) when it has none, then taken."""
    order = target.get("order")
    if order is None:
        order = api_client.post(token, f"/api/v1/alerts/{target['alert']}/work-order", {"assignee": me})["id"]
    api_client.post(token, f"/api/v1/work-orders/{order}/take", {})
    return order


@callback(Output("field-message", "children"), Output("field-changed", "data"), Output("field-note", "value"),
          Output("field-photo", "contents"),
          *[Input(b, "n_clicks") for b in BUTTONS], Input("field-photo", "contents"),
          State("field-target", "data"), State("field-note", "value"), State("session", "data"), State("lang", "data"),
          State("field-changed", "data"), prevent_initial_call=True)
@page_callback()
def act(_ack, _take, _note, _resolve, contents, target, text, session, lang, changed):
    """Carry out the pressed button (or the chosen photo) through the API; say what happened or why not."""
    trigger = ctx.triggered_id
    if not target or not ctx.triggered or not ctx.triggered[0]["value"]:  # drawn, not pressed
        raise dash.exceptions.PreventUpdate
    token, me, text = session["token"], session["user"]["username"], (text or "").strip()
    keep = dash.no_update
    try:
        if trigger == "field-ack":
            api_client.post(token, f"/api/v1/alerts/{target['alert']}/ack", {})
            return t("field.acked", lang).format(id=target["alert"]), (changed or 0) + 1, keep, None
        if trigger == "field-take":
            return t("field.taken", lang).format(id=take(token, target, me)), (changed or 0) + 1, keep, None
        if trigger == "field-note-add":
            if not text:
                return t("field.need_note", lang), keep, keep, None
            api_client.post(token, f"/api/v1/work-orders/{target['order']}/notes", {"text": text})
            return t("field.noted", lang), (changed or 0) + 1, "", None
        if trigger == "field-resolve":
            if not text:
                return t("field.need_resolution", lang), keep, keep, None
            api_client.send(token, "PATCH", f"/api/v1/work-orders/{target['order']}", {"status": "done", "note": text})
            return t("field.resolved", lang).format(id=target["order"]), (changed or 0) + 1, "", None
    except api_client.ApiError as exc:
        return _refusal(exc, lang), (changed or 0) + 1, keep, None
    picture = _picture(contents)
    if picture is None or picture[1] not in PHOTO_TYPES:
        return t("field.photo.415", lang), keep, keep, None
    try:
        api_client.post_content(token, f"/api/v1/work-orders/{target['order']}/photos", *picture)
    except api_client.ApiError as exc:
        return _refusal(exc, lang, photo=True), keep, keep, None
    return t("field.photo_added", lang), (changed or 0) + 1, keep, None
