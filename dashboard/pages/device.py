"""设备详情 Device detail: state now, readings over the day, recent events, commands and a form to send one."""

import dash
from dash import Input, Output, State, callback, dcc, html

from dashboard import api_client, device_figures, readings
from dashboard.commands import command_body, command_options
from dashboard.components import export_buttons, graph, panel, panel_head, table
from dashboard.i18n import DEFAULT_LANG, fmt_text, fmt_time, t
from dashboard.page import page_callback
from dashboard.scope import carry, query_values
from dashboard.settings import dashboard_settings
from dashboard.strings import STRINGS

dash.register_page(__name__, path="/device", title="设备详情 · 教育信息化数字驾驶舱", order=9)


def layout(**_query) -> html.Div:
    """State, history, events, commands and the command form of the device in ?id=."""
    return html.Div(className="page device", children=[
        dcc.Interval(id="device-refresh", interval=dashboard_settings().refresh_ms),
        html.Div(className="page-head", children=[
            html.Div(id="device-title", className="breadcrumb"), html.Div(id="device-as-of", className="muted")]),
        html.Div(id="device-error"),
        html.Div(id="device-content", children=[
            html.Div(className="grid-3", children=[
                panel(html.Div(id="device-state"), class_name="state-panel"),
                panel(graph("device-history", 400), class_name="span-2"),
            ]),
            html.Div(className="grid-3", children=[
                panel(html.Div(id="device-events", className="scroll table-360")),
                panel(html.Div(id="device-commands", className="scroll table-360")),
                panel(html.Div(className="command-form", children=[
                    html.H3(id="device-command-title", className="panel-title"),
                    dcc.Dropdown(id="device-command-name", options=command_options(DEFAULT_LANG), value="reboot", clearable=False,
                                 searchable=False),
                    html.Div(id="device-command-notice", children=[
                        dcc.Input(id="device-command-text", type="text", maxLength=200)]),
                    html.Div(id="device-command-schedule", className="form-row", children=[
                        html.Label(id="device-command-on-label", htmlFor="device-command-on"),
                        dcc.Input(id="device-command-on", type="text", value="07:30", maxLength=5),
                        html.Label(id="device-command-off-label", htmlFor="device-command-off"),
                        dcc.Input(id="device-command-off", type="text", value="17:30", maxLength=5)]),
                    html.Button(id="device-command-send", n_clicks=0),
                    html.Div(id="device-command-result"),
                ])),
            ]),
        ]),
    ])


def _flag(value: bool | None, lang: str) -> html.Span:
    if value is None:
        return html.Span("—")
    return html.Span(t("yes" if value else "no", lang), className="state-on" if value else "state-off")


def state_list(d: dict, lang: str) -> html.Dl:
    """The device's registry facts, its state now and its latest readings, each named and in its unit."""
    online = html.Span(t("device.online" if d["online"] else "device.offline", lang),
                       className="state-on" if d["online"] else "state-off", id="device-online")
    facts = [(t("device.kind", lang), t(d["kind"], lang)), (t("device.school", lang), fmt_text(d["school_name"])),
             (t("device.county", lang), fmt_text(d["county_name"])), (t("device.room", lang), fmt_text(d["room"])),
             (t("device.vendor", lang), fmt_text(d.get("vendor"), d.get("model"))),
             (t("device.installed_on", lang), fmt_text(d["installed_on"])),
             (t("device.state", lang), online), (t("device.last_seen", lang), fmt_time(d["last_seen"], seconds=True)),
             (t("device.in_use", lang), _flag(d["in_use"], lang)),
             (t("device.recording", lang), _flag(d["recording"], lang)),
             (t("device.streaming", lang), _flag(d["streaming"], lang))]
    facts += [(readings.label(k, lang), readings.fmt_reading(k, v, lang))
              for k, v in readings.shown(d.get("last_values") or {})]
    return html.Dl(className="kv", id="device-facts",
                   children=[x for name, value in facts for x in (html.Dt(name), html.Dd(value))])


def event_detail(event: dict, lang: str) -> str:
    """An event's lesson (and the room's role in it) and its details, each named; "—" when there are none."""
    parts = []
    if event.get("lesson_id"):
        role = f" · {t('patrol.role.' + event['lesson_role'], lang)}" if event.get("lesson_role") else ""
        parts.append(f"{readings.label('lesson_id', lang)}: {event['lesson_id']}{role}")
    for key, value in (event.get("detail") or {}).items():
        name = t(f"event.detail.{key}", lang) if f"event.detail.{key}" in STRINGS else readings.label(key, lang)
        parts.append(f"{name}: {readings.fmt_reading(key, value, lang)}")
    return "; ".join(parts) if parts else "—"


def events_table(events: list[dict], lang: str) -> html.Table:
    """Latest events, newest first, in local time."""
    rows = [[fmt_time(e["time"], seconds=True), t(f"event.{e['type']}", lang), event_detail(e, lang)] for e in events]
    return table([t("time", lang), t("type", lang), t("detail", lang)], rows, lang, "device-events-table")


def commands_table(commands: list[dict], lang: str) -> html.Table:
    """Latest commands with who sent them and what became of them."""
    rows = [[fmt_time(c["issued_at"], seconds=True), t(f"command.{c['name']}", lang), c["issued_by"],
             t(f"command.status.{c['status']}", lang), c["result_message"] or "—"] for c in commands]
    return table([t("time", lang), t("command.name", lang), t("command.issued_by", lang), t("status", lang),
                  t("command.result", lang)], rows, lang, "device-commands-table")


def back_link(search: str | None, lang: str) -> dcc.Link:
    """Back to the device list, keeping the scope."""
    return dcc.Link(t("devices.title", lang), href=carry("/devices", search))


@callback(
    Output("device-title", "children"), Output("device-state", "children"), Output("device-history", "figure"),
    Output("device-events", "children"), Output("device-commands", "children"), Output("device-error", "children"),
    Output("device-content", "hidden"), Output("device-as-of", "children"),
    Input("device-refresh", "n_intervals"), Input("url", "search"), Input("lang", "data"),
    Input("device-command-result", "children"), State("session", "data"),
)
@page_callback("device-error-message",
               lambda box, search, lang, **_: ([back_link(search, lang)], [], {}, [], [], box, True, ""))
def refresh(_n, search, lang, _sent, session):
    """Fetch the device, its readings, events and commands."""
    device_id = query_values(search).get("id")
    back = back_link(search, lang)
    if not device_id:
        return [back], [], {}, [], [], html.Div(t("device.missing", lang), className="empty"), True, ""
    path, token = f"/api/v1/devices/{device_id}", session["token"]
    device = api_client.get(token, path)
    history = api_client.get(token, f"{path}/history", hours=24)
    events = api_client.get(token, f"{path}/events", limit=50)
    commands = api_client.get(token, f"{path}/commands")
    title = [back, html.Span("›", className="sep"), html.Span(device_id, className="current", id="device-id")]
    return (
        title, [html.H3(t("device.state", lang), className="panel-title"), state_list(device, lang)],
        device_figures.history_figure(history, device["kind"], t("device.history", lang), lang),
        [panel_head(t("device.events", lang), export_buttons("events", f"{path}/events", lang, limit=500)),
         events_table(events, lang)],
        [panel_head(t("device.commands", lang), export_buttons("commands", f"{path}/commands", lang)),
         commands_table(commands, lang)],
        None, False, f"{t('as_of', lang)} {fmt_time(device['last_seen'], seconds=True)}",
    )


@callback(
    Output("device-command-title", "children"), Output("device-command-name", "options"),
    Output("device-command-name", "value"), Output("device-command-text", "placeholder"),
    Output("device-command-on-label", "children"), Output("device-command-off-label", "children"),
    Output("device-command-send", "children"), Input("lang", "data"), State("device-command-name", "value"))
@page_callback()
def form_words(lang: str, current: str | None):
    """The command form in the chosen language."""
    return (t("command.send", lang), command_options(lang),
            current or "reboot", t("command.text", lang), t("command.on", lang), t("command.off", lang),
            t("command.send", lang))


@callback(Output("device-command-notice", "hidden"), Output("device-command-schedule", "hidden"),
          Input("device-command-name", "value"))
def form_fields(name: str | None):
    """Only the fields the chosen command takes."""
    return name != "notice", name != "power_schedule"


@callback(
    Output("device-command-result", "children"), Input("device-command-send", "n_clicks"),
    State("device-command-name", "value"), State("device-command-text", "value"),
    State("device-command-on", "value"), State("device-command-off", "value"),
    State("url", "search"), State("session", "data"), State("lang", "data"), prevent_initial_call=True,
)
@page_callback("device-command-error", lambda box, **_: box, back=False)
def send(_clicks, name, text, on, off, search, session, lang):
    """Send the command through the API and show its answer or its error."""
    device_id = query_values(search).get("id")
    if not device_id:
        raise dash.exceptions.PreventUpdate
    answer = api_client.post(session["token"], f"/api/v1/devices/{device_id}/commands",
                             command_body(name or "reboot", text, on, off))
    message = t("command.sent", lang).format(id=answer["id"][:8], status=t(f"command.status.{answer['status']}", lang))
    return html.Div(message, className="notice-ok", id="device-command-ok")
