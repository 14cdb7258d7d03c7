"""管理 · 运维团队 Administration, operations teams: who is told of the patrol's alerts within a scope, and how
(a webhook, an e-mail address, an MQTT topic); a form to create a team or change its routing."""

import dash
from dash import ALL, Input, Output, State, callback, dcc, html

from dashboard import api_client
from dashboard.components import panel, table
from dashboard.i18n import fmt_text, t
from dashboard.page import page_callback
from dashboard.pages.admin_common import (
    ADMIN_API,
    LIST_LIMIT,
    TEAM_LEVELS,
    Field,
    body,
    choices,
    clicked,
    done,
    form_words,
    frame,
    hint,
    refusal,
    register_gate,
    register_words,
    scope_text,
    total_note,
)

dash.register_page(__name__, path="/admin/teams", title="管理 · 运维团队 · 教育信息化数字驾驶舱", order=24)

P = "admin-teams"
FIELDS = (
    Field("name", label="admin.field.team_name", props=(("maxLength", 100),)),
    Field("scope_level", options=choices(TEAM_LEVELS, "")),
    Field("scope_code", props=(("maxLength", 32),)),
    Field("webhook_url", props=(("maxLength", 500), ("placeholder", "https://…"))),
    Field("email", props=(("maxLength", 254),)),
    Field("mqtt_topic", props=(("maxLength", 128), ("placeholder", "edu/ops/…"))),
)
FORM = [f"{P}-{f.name}" for f in FIELDS]
ROUTES = ("webhook_url", "email", "mqtt_topic")  # cleared on purpose when emptied in a change


def layout(**_query) -> html.Div:
    """The teams beside the form (which says which team it is changing)."""
    return frame(P, [
        dcc.Store(id=f"{P}-changed", data=0),
        dcc.Store(id=f"{P}-items", data=[]),
        dcc.Store(id=f"{P}-editing", data=None),  # the id of the team the form changes (None: a new one)
        html.Div(className="admin-grid", children=[
            panel(html.Div([
                html.Div(className="toolbar", children=[
                    dcc.Input(id=f"{P}-q", type="search", debounce=True, className="search", maxLength=100)]),
                html.Div(id=f"{P}-list", className="scroll table-440"),
                html.Div(id=f"{P}-note")]), title=html.Span(id=f"{P}-list-title")),
            panel(html.Div(className="admin-form", children=[
                html.Div(id=f"{P}-editing-note", className="muted"),
                *[f.component(P) for f in FIELDS],
                html.Div(className="form-row", children=[
                    html.Button(id=f"{P}-create", n_clicks=0),
                    html.Button(id=f"{P}-save", n_clicks=0, className="secondary")]),
                html.Div(id=f"{P}-result")]), title=html.Span(id=f"{P}-form-title")),
        ]),
    ])


register_gate(P, "teams", f"{ADMIN_API}/ops-teams")
register_words({
    (f"{P}-q", "placeholder"): "admin.teams.search", (f"{P}-list-title", "children"): "admin.teams.title",
    (f"{P}-form-title", "children"): "admin.teams.form", (f"{P}-create", "children"): "admin.create",
    (f"{P}-save", "children"): "admin.save", **form_words(P, FIELDS)})


def team_rows(teams: list[dict], lang: str) -> list[list]:
    """One row per team: name, scope, where its alerts go, and its edit button."""
    return [[team["id"], team.get("name") or "",
             scope_text(team.get("scope_level"), team.get("scope_code"), team.get("scope_name"), lang),
             fmt_text(team.get("webhook_url")), fmt_text(team.get("email")), fmt_text(team.get("mqtt_topic")),
             html.Button(t("admin.edit", lang), id={"type": "admin-team-edit", "id": team["id"]}, n_clicks=0,
                         className="small")] for team in teams]


@callback(Output(f"{P}-list", "children"), Output(f"{P}-note", "children"), Output(f"{P}-items", "data"),
          Input(f"{P}-q", "value"), Input(f"{P}-changed", "data"), Input("lang", "data"), State("session", "data"))
@page_callback(f"{P}-list-error", lambda box, **_: (box, None, []), back=False)
def refresh(q: str | None, _changed: int, lang: str, session: dict):
    """The operations teams within the admin's scope matching the search."""
    answer = api_client.get(session["token"], f"{ADMIN_API}/ops-teams", **body({"q": q}), limit=LIST_LIMIT)
    headers = ["#", t("name", lang), t("admin.scope", lang), t("admin.field.webhook_url", lang),
               t("admin.field.email", lang), t("admin.field.mqtt_topic", lang), t("patrol.actions", lang)]
    return (table(headers, team_rows(answer["items"], lang), lang, f"{P}-table"),
            total_note(answer, lang, f"{P}-total"), answer["items"])


@callback(Output(f"{P}-editing-note", "children"), Input(f"{P}-editing", "data"), Input("lang", "data"))
@page_callback(needs_session=False)
def editing_note(editing: int | None, lang: str):
    """Which team the form changes, if any."""
    return t("admin.teams.editing", lang).format(id=editing) if editing is not None else t("admin.teams.new", lang)


@callback(Output(f"{P}-result", "children"), Output(f"{P}-changed", "data"),
          Output(f"{P}-editing", "data", allow_duplicate=True),
          Input(f"{P}-create", "n_clicks"), Input(f"{P}-save", "n_clicks"),
          *[State(i, "value") for i in FORM], State(f"{P}-editing", "data"), State(f"{P}-changed", "data"),
          State("lang", "data"), State("session", "data"), prevent_initial_call=True)
@page_callback()
def submit(_create, _save, name, scope_level, scope_code, webhook_url, email, mqtt_topic, editing, changed, lang,
           session):
    """Create the team, or save the routing of the team being changed; the API's answer beside the form."""
    trigger = clicked()
    if trigger is None:
        raise dash.exceptions.PreventUpdate
    fields = {"name": name, "scope_level": scope_level, "scope_code": scope_code, "webhook_url": webhook_url,
              "email": email, "mqtt_topic": mqtt_topic}
    try:
        if trigger == f"{P}-create":
            answer = api_client.send(session["token"], "POST", f"{ADMIN_API}/ops-teams", body(fields))
            answer = answer or {}
            message, editing = t("admin.created", lang).format(what=answer.get("name", name)), answer.get("id")
        else:
            if editing is None:
                return hint(t("admin.teams.pick_first", lang), f"{P}-hint"), dash.no_update, dash.no_update
            api_client.send(session["token"], "PATCH", f"{ADMIN_API}/ops-teams/{int(editing)}",
                            body(fields, keep_empty=ROUTES))
            message = t("admin.saved", lang).format(what=name or editing)
    except api_client.ApiError as exc:
        return refusal(exc, lang, f"{P}-error"), dash.no_update, dash.no_update
    return done(message, f"{P}-done"), (changed or 0) + 1, editing


@callback(*[Output(i, "value") for i in FORM], Output(f"{P}-editing", "data"),
          Output(f"{P}-result", "children", allow_duplicate=True),
          Input({"type": "admin-team-edit", "id": ALL}, "n_clicks"), State(f"{P}-items", "data"),
          prevent_initial_call=True)
def edit(_clicks, items: list[dict]):
    """The edit button of a row puts that team into the form, which then changes it."""
    trigger = clicked()
    team = next((x for x in items or [] if trigger and x["id"] == trigger["id"]), None)
    if team is None:
        raise dash.exceptions.PreventUpdate
    return (*[team.get(f.name) for f in FIELDS], team["id"], None)
