"""管理 · 设备 Administration, devices: the devices within the admin's scope (in service or retired), a form
to register one or change it (another school or room is a move), retiring with a reason and returning to
service, and the provisioning sheet (XLSX) of a school's or a vendor's devices.

A device registered here gets its MQTT credentials from the API; they are shown once, with the broker's
address and the device's topic prefix, in the answer to the click that registered it (the provisioning
sheet gives them again to whoever installs the devices).
"""

import dash
from dash import ALL, Input, Output, State, callback, dcc, html

from dashboard import api_client
from dashboard.components import panel, table
from dashboard.i18n import fmt_text, fmt_time, t
from dashboard.page import page_callback
from dashboard.pages.admin_common import (
    ADMIN_API,
    KINDS,
    LIST_LIMIT,
    Field,
    body,
    choices,
    clicked,
    counted,
    create_or_save,
    done,
    form_words,
    frame,
    hint,
    part,
    refusal,
    register_gate,
    register_words,
    secret,
    total_note,
)

dash.register_page(__name__, path="/admin/devices", title="管理 · 设备 · 教育信息化数字驾驶舱", order=22)

P = "admin-devices"
FIELDS = (
    Field("id", label="admin.field.device_id", props=(("maxLength", 64),)),
    Field("kind", options=choices(KINDS, "")),
    Field("school_code", props=(("maxLength", 10),)),
    Field("room", props=(("maxLength", 64),)),
    Field("vendor", props=(("maxLength", 64),)),
    Field("model", props=(("maxLength", 64),)),
    Field("installed_on", props=(("placeholder", "2025-09-01"), ("maxLength", 10))),
)
FORM = [f"{P}-{f.name}" for f in FIELDS]
RETIRE_ID, REASON, SHEET_SCHOOL, SHEET_VENDOR = SIDE_FIELDS = (  # the retire form's and the sheet's fields
    Field("retire_id", label="admin.field.device_id", props=(("maxLength", 64),)),
    Field("reason", label="admin.field.reason", props=(("maxLength", 500),)),
    Field("sheet_school", label="admin.field.school_code", props=(("maxLength", 10),)),
    Field("sheet_vendor", label="admin.field.vendor", props=(("maxLength", 64),)),
)
RETIRED = (("false", "admin.devices.in_service"), ("true", "admin.devices.retired"))


def layout(**_query) -> html.Div:
    """Filters above the list; the register/change form, the retire form and the provisioning sheet beside it."""
    return frame(P, [
        dcc.Store(id=f"{P}-changed", data=0),
        dcc.Store(id=f"{P}-items", data=[]),
        dcc.Download(id=f"{P}-download"),
        html.Div(className="admin-grid", children=[
            panel(html.Div([
                html.Div(className="toolbar", children=[
                    dcc.Input(id=f"{P}-q", type="search", debounce=True, className="search", maxLength=100),
                    dcc.Input(id=f"{P}-by-school", type="search", debounce=True, maxLength=10, style={"width": "160px"}),
                    dcc.RadioItems(id=f"{P}-by-kind", options=[{"label": "", "value": ""}], value="", inline=True,
                                   className="admin-choice"),
                    dcc.RadioItems(id=f"{P}-by-state", options=[{"label": v, "value": v} for v, _ in RETIRED],
                                   value="false", inline=True, className="admin-choice")]),
                html.Div(id=f"{P}-row-message"),
                html.Div(id=f"{P}-list", className="scroll table-440"),
                html.Div(id=f"{P}-note")]), title=html.Span(id=f"{P}-list-title")),
            html.Div([
                panel(html.Div(className="admin-form", children=[
                    *[f.component(P) for f in FIELDS],
                    html.Div(className="form-row", children=[
                        html.Button(id=f"{P}-create", n_clicks=0),
                        html.Button(id=f"{P}-save", n_clicks=0, className="secondary")]),
                    html.Div(id=f"{P}-result")]), title=html.Span(id=f"{P}-form-title")),
                panel(html.Div(className="admin-form", children=[
                    RETIRE_ID.component(P), REASON.component(P),
                    html.Div(html.Button(id=f"{P}-retire", n_clicks=0), className="form-row"),
                    html.Div(id=f"{P}-retire-result")]), title=html.Span(id=f"{P}-retire-title")),
                panel(html.Div(className="admin-form", children=[
                    SHEET_SCHOOL.component(P), SHEET_VENDOR.component(P),
                    html.Div(html.Button(id=f"{P}-sheet", n_clicks=0, className="export"), className="form-row"),
                    html.Div(id=f"{P}-sheet-result")]), title=html.Span(id=f"{P}-sheet-title")),
            ]),
        ]),
    ])


register_gate(P, "devices", f"{ADMIN_API}/devices")
register_words({
    (f"{P}-q", "placeholder"): "admin.devices.search", (f"{P}-by-school", "placeholder"): "admin.devices.school",
    (f"{P}-by-kind", "options"): [("", "devices.all_kinds"), *choices(KINDS, "")],
    (f"{P}-by-state", "options"): RETIRED,
    (f"{P}-list-title", "children"): "admin.devices.title", (f"{P}-form-title", "children"): "admin.devices.form",
    (f"{P}-create", "children"): "admin.devices.register", (f"{P}-save", "children"): "admin.save",
    (f"{P}-retire-title", "children"): "admin.devices.retire_title",
    (f"{P}-retire", "children"): "admin.devices.retire",
    (f"{P}-sheet-title", "children"): "admin.devices.sheet_title", (f"{P}-sheet", "children"): "admin.devices.sheet",
    **form_words(P, FIELDS), **form_words(P, SIDE_FIELDS)})


def device_rows(devices: list[dict], lang: str) -> list[list]:
    """One row per device: id, kind, school, room, vendor and model, installed, retired (when and why), and
    what can be done (edit, retire — or return when retired — and its history)."""
    rows = []
    for d in devices:
        key = d["id"]
        retired = bool(d.get("retired_at"))
        step = (html.Button(t("admin.devices.return", lang), id={"type": "admin-device-return", "id": key},
                            n_clicks=0, className="small") if retired else
                html.Button(t("admin.devices.retire", lang), id={"type": "admin-device-retire", "id": key},
                            n_clicks=0, className="small"))
        actions = html.Span(className="actions", children=[
            html.Button(t("admin.edit", lang), id={"type": "admin-device-edit", "id": key}, n_clicks=0,
                        className="small"),
            step, dcc.Link(t("admin.history", lang), href=f"/admin/history?entity=device&key={key}")])
        rows.append([key, t(d["kind"], lang) if d.get("kind") else "—",
                     fmt_text(d.get("school_name"), f"({d.get('school_code', '')})"), fmt_text(d.get("room")),
                     fmt_text(d.get("vendor"), d.get("model")), fmt_text(d.get("installed_on")),
                     fmt_text(fmt_time(d["retired_at"]), d.get("retired_reason")) if retired else "—", actions])
    return rows


@callback(Output(f"{P}-list", "children"), Output(f"{P}-note", "children"), Output(f"{P}-items", "data"),
          Input(f"{P}-q", "value"), Input(f"{P}-by-school", "value"), Input(f"{P}-by-kind", "value"),
          Input(f"{P}-by-state", "value"), Input(f"{P}-changed", "data"), Input("lang", "data"),
          State("session", "data"))
@page_callback(f"{P}-list-error", lambda box, **_: (box, None, []), back=False)
def refresh(q, school, kind, retired, _changed, lang: str, session: dict):
    """The devices within the admin's scope matching the filters."""
    answer = api_client.get(session["token"], f"{ADMIN_API}/devices",
                            **body({"q": q, "school": school, "kind": kind, "retired": retired}), limit=LIST_LIMIT)
    headers = [t("admin.field.device_id", lang), t("device.kind", lang), t("school", lang), t("device.room", lang),
               t("device.vendor", lang), t("device.installed_on", lang), t("admin.devices.retired", lang),
               t("patrol.actions", lang)]
    return (table(headers, device_rows(answer["items"], lang), lang, f"{P}-table"),
            total_note(answer, lang, f"{P}-total"), answer["items"])


def broker(mqtt: dict) -> str | None:
    """Where the device connects: mqtts://host:port with TLS, mqtt://host:port without; None when the API
    does not know its public address."""
    if not mqtt.get("host"):
        return None
    port = f":{mqtt['port']}" if mqtt.get("port") else ""
    return f"{'mqtts' if mqtt.get('tls') else 'mqtt'}://{mqtt['host']}{port}"


def registered(answer: dict, lang: str) -> html.Div:
    """A new device: its MQTT credentials and where to connect, shown once; or the API's note when it has no
    provisioning secret to derive them from."""
    key = answer.get("id", "")
    mqtt = answer.get("mqtt")
    if not mqtt:
        return done(fmt_text(t("admin.created", lang).format(what=key), answer.get("note")), f"{P}-done")
    return secret(t("admin.devices.credentials", lang).format(id=key), [
        (t("admin.mqtt.username", lang), mqtt.get("username")), (t("admin.mqtt.password", lang), mqtt.get("password")),
        (t("admin.mqtt.server", lang), broker(mqtt)),
        (t("admin.mqtt.topic_prefix", lang), mqtt.get("topic_prefix"))], lang, f"{P}-secret")


@callback(Output(f"{P}-result", "children"), Output(f"{P}-changed", "data"),
          Input(f"{P}-create", "n_clicks"), Input(f"{P}-save", "n_clicks"),
          *[State(i, "value") for i in FORM], State(f"{P}-changed", "data"), State("lang", "data"),
          State("session", "data"), prevent_initial_call=True)
@page_callback()
def submit(_create, _save, key, kind, school_code, room, vendor, model, installed_on, changed, lang, session):
    """Register the device (its credentials shown once), or save its changes (another school or room is a
    move); the API's answer or refusal beside the form."""
    trigger = clicked()
    if trigger is None:
        raise dash.exceptions.PreventUpdate
    fields = {"school_code": school_code, "room": room, "vendor": vendor, "model": model,
              "installed_on": installed_on}
    return counted(create_or_save(P, session, lang, "devices", "id", key, fields, "admin.devices.id_first",
                                  create_only={"kind": kind}, created=lambda a: registered(a, lang)), changed)


@callback(*[Output(i, "value") for i in FORM], Output(f"{P}-result", "children", allow_duplicate=True),
          Input({"type": "admin-device-edit", "id": ALL}, "n_clicks"), State(f"{P}-items", "data"),
          prevent_initial_call=True)
def edit(_clicks, items: list[dict]):
    """The edit button of a row puts that device into the form."""
    trigger = clicked()
    device = next((d for d in items or [] if trigger and d["id"] == trigger["id"]), None)
    if device is None:
        raise dash.exceptions.PreventUpdate
    return (*[device.get(f.name) for f in FIELDS], None)


@callback(Output(f"{P}-retire_id", "value"), Output(f"{P}-retire-result", "children", allow_duplicate=True),
          Input({"type": "admin-device-retire", "id": ALL}, "n_clicks"), prevent_initial_call=True)
def choose_retiring(_clicks):
    """A row's retire button names the device in the retire form, where the reason is asked for."""
    trigger = clicked()
    if trigger is None:
        raise dash.exceptions.PreventUpdate
    return trigger["id"], None


@callback(Output(f"{P}-retire-result", "children"), Output(f"{P}-changed", "data", allow_duplicate=True),
          Input(f"{P}-retire", "n_clicks"), State(f"{P}-retire_id", "value"), State(f"{P}-reason", "value"),
          State(f"{P}-changed", "data"), State("lang", "data"), State("session", "data"), prevent_initial_call=True)
@page_callback()
def retire(clicks, key, reason, changed, lang, session):
    """Retire the device for the reason given (the API requires one and keeps it)."""
    if not clicks:
        raise dash.exceptions.PreventUpdate
    key = (key or "").strip()
    if not key:
        return hint(t("admin.devices.id_first", lang), f"{P}-hint"), dash.no_update
    try:
        api_client.send(session["token"], "POST", f"{ADMIN_API}/devices/{part(key)}/retire",
                        {"reason": (reason or "").strip()})
    except api_client.ApiError as exc:
        return refusal(exc, lang, f"{P}-retire-error"), dash.no_update
    return done(t("admin.devices.retired_done", lang).format(id=key), f"{P}-retire-done"), (changed or 0) + 1


@callback(Output(f"{P}-row-message", "children"), Output(f"{P}-changed", "data", allow_duplicate=True),
          Input({"type": "admin-device-return", "id": ALL}, "n_clicks"), State(f"{P}-changed", "data"),
          State("lang", "data"), State("session", "data"), prevent_initial_call=True)
@page_callback()
def bring_back(_clicks, changed, lang, session):
    """Return a retired device to service."""
    trigger = clicked()
    if trigger is None:
        raise dash.exceptions.PreventUpdate
    try:
        api_client.send(session["token"], "POST", f"{ADMIN_API}/devices/{part(trigger['id'])}/return", {})
    except api_client.ApiError as exc:
        return refusal(exc, lang, f"{P}-row-error"), dash.no_update
    return done(t("admin.devices.returned_done", lang).format(id=trigger["id"]), f"{P}-row-done"), (changed or 0) + 1


@callback(Output(f"{P}-download", "data"), Output(f"{P}-sheet-result", "children"),
          Input(f"{P}-sheet", "n_clicks"), State(f"{P}-sheet_school", "value"), State(f"{P}-sheet_vendor", "value"),
          State("lang", "data"), State("session", "data"), prevent_initial_call=True)
@page_callback()
def sheet(clicks, school, vendor, lang, session):
    """The provisioning sheet of the school's or vendor's devices within scope (every one when neither)."""
    if not clicks:
        raise dash.exceptions.PreventUpdate
    try:
        content, name = api_client.download(session["token"], f"{ADMIN_API}/devices/provisioning.xlsx",
                                            **body({"school": school, "vendor": vendor}))
    except api_client.ApiError as exc:
        return dash.no_update, refusal(exc, lang, f"{P}-sheet-error")
    if name == "export":
        name = "provisioning.xlsx"
    return dcc.send_bytes(content, name), None
