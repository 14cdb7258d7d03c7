"""管理 · 学校 Administration, schools: the schools within the admin's scope, a form to register one or change
it, and moving a school to another county (a change of its county: the API keeps the move in the history).

A school in a county outside the admin's scope is refused by the API (403, "… lies outside your scope");
the refusal is shown beside the form as the API words it.
"""

import dash
from dash import ALL, Input, Output, State, callback, dcc, html

from dashboard import api_client
from dashboard.components import panel, table
from dashboard.i18n import fmt_count, fmt_text, t
from dashboard.page import page_callback
from dashboard.pages.admin_common import (
    ADMIN_API,
    LIST_LIMIT,
    LOCALES,
    STAGES,
    Field,
    body,
    choices,
    clicked,
    counted,
    create_or_save,
    form_words,
    frame,
    register_gate,
    register_words,
    total_note,
)

dash.register_page(__name__, path="/admin/schools", title="管理 · 学校 · 教育信息化数字驾驶舱", order=21)

P = "admin-schools"
FIELDS = (
    Field("code", props=(("maxLength", 10),)),
    Field("name", label="admin.field.school_name", props=(("maxLength", 100),)),
    Field("county_code", props=(("maxLength", 6),)),
    Field("locale", options=choices(LOCALES, "locale.")),
    Field("stage", options=choices(STAGES, "admin.stage.")),
    Field("classes", kind="number", props=(("min", 0), ("step", 1))),
    Field("students", kind="number", props=(("min", 0), ("step", 1))),
    Field("teachers", kind="number", props=(("min", 0), ("step", 1))),
    Field("uplink_mbps", kind="number", props=(("min", 0),)),
    Field("latitude", kind="number"),
    Field("longitude", kind="number"),
)
FORM = [f"{P}-{f.name}" for f in FIELDS]


def layout(**_query) -> html.Div:
    """Search and county filter above the list; the form beside it."""
    return frame(P, [
        dcc.Store(id=f"{P}-changed", data=0),
        dcc.Store(id=f"{P}-items", data=[]),
        html.Div(className="admin-grid", children=[
            panel(html.Div([
                html.Div(className="toolbar", children=[
                    dcc.Input(id=f"{P}-q", type="search", debounce=True, className="search", maxLength=100),
                    dcc.Input(id=f"{P}-county", type="search", debounce=True, maxLength=6, style={"width": "160px"})]),
                html.Div(id=f"{P}-list", className="scroll table-440"),
                html.Div(id=f"{P}-note")]), title=html.Span(id=f"{P}-list-title")),
            panel(html.Div(className="admin-form", children=[
                *[f.component(P) for f in FIELDS],
                html.Div(id=f"{P}-move-hint", className="muted"),
                html.Div(className="form-row", children=[
                    html.Button(id=f"{P}-create", n_clicks=0),
                    html.Button(id=f"{P}-save", n_clicks=0, className="secondary")]),
                html.Div(id=f"{P}-result")]), title=html.Span(id=f"{P}-form-title")),
        ]),
    ])


register_gate(P, "schools", f"{ADMIN_API}/schools")
register_words({
    (f"{P}-q", "placeholder"): "admin.schools.search", (f"{P}-county", "placeholder"): "admin.schools.county",
    (f"{P}-list-title", "children"): "admin.schools.title", (f"{P}-form-title", "children"): "admin.schools.form",
    (f"{P}-move-hint", "children"): "admin.schools.move_hint", (f"{P}-create", "children"): "admin.create",
    (f"{P}-save", "children"): "admin.save", **form_words(P, FIELDS)})


def school_rows(schools: list[dict], lang: str) -> list[list]:
    """One row per school: code, name, county, locale and stage, size, uplink, and its edit and history."""
    rows = []
    for s in schools:
        code = s["code"]
        actions = html.Span(className="actions", children=[
            html.Button(t("admin.edit", lang), id={"type": "admin-school-edit", "code": code}, n_clicks=0,
                        className="small"),
            dcc.Link(t("admin.history", lang), href=f"/admin/history?entity=school&key={code}")])
        rows.append([code, s.get("name") or "", fmt_text(s.get("county_name"), f"({s.get('county_code', '')})"),
                     t(f"locale.{s['locale']}", lang) if s.get("locale") else "—",
                     t(f"admin.stage.{s['stage']}", lang) if s.get("stage") else "—",
                     fmt_count(s.get("classes"), lang), fmt_count(s.get("students"), lang),
                     fmt_count(s.get("teachers"), lang), fmt_text(s.get("uplink_mbps")), actions])
    return rows


@callback(Output(f"{P}-list", "children"), Output(f"{P}-note", "children"), Output(f"{P}-items", "data"),
          Input(f"{P}-q", "value"), Input(f"{P}-county", "value"), Input(f"{P}-changed", "data"),
          Input("lang", "data"), State("session", "data"))
@page_callback(f"{P}-list-error", lambda box, **_: (box, None, []), back=False)
def refresh(q: str | None, county: str | None, _changed: int, lang: str, session: dict):
    """The schools within the admin's scope matching the search and county."""
    answer = api_client.get(session["token"], f"{ADMIN_API}/schools", **body({"q": q, "county": county}),
                            limit=LIST_LIMIT)
    headers = [t("which.code", lang), t("name", lang), t("county", lang), t("admin.field.locale", lang),
               t("admin.field.stage", lang), t("admin.field.classes", lang), t("admin.field.students", lang),
               t("admin.field.teachers", lang), t("admin.field.uplink_mbps", lang), t("patrol.actions", lang)]
    return (table(headers, school_rows(answer["items"], lang), lang, f"{P}-table"),
            total_note(answer, lang, f"{P}-total"), answer["items"])


@callback(Output(f"{P}-result", "children"), Output(f"{P}-changed", "data"),
          Input(f"{P}-create", "n_clicks"), Input(f"{P}-save", "n_clicks"),
          *[State(i, "value") for i in FORM], State(f"{P}-changed", "data"), State("lang", "data"),
          State("session", "data"), prevent_initial_call=True)
@page_callback()
def submit(_create, _save, code, name, county_code, locale, stage, classes, students, teachers, uplink_mbps,
           latitude, longitude, changed, lang, session):
    """Register the school, or save its changes (a new county is a move); the API's answer beside the form."""
    trigger = clicked()
    if trigger is None:
        raise dash.exceptions.PreventUpdate
    fields = {"name": name, "county_code": county_code, "locale": locale, "stage": stage, "classes": classes,
              "students": students, "teachers": teachers, "uplink_mbps": uplink_mbps, "latitude": latitude,
              "longitude": longitude}
    return counted(create_or_save(P, session, lang, "schools", "code", code, fields, "admin.schools.code_first"),
                   changed)


@callback(*[Output(i, "value") for i in FORM], Output(f"{P}-result", "children", allow_duplicate=True),
          Input({"type": "admin-school-edit", "code": ALL}, "n_clicks"), State(f"{P}-items", "data"),
          prevent_initial_call=True)
def edit(_clicks, items: list[dict]):
    """The edit button of a row puts that school into the form."""
    trigger = clicked()
    school = next((s for s in items or [] if trigger and s["code"] == trigger["code"]), None)
    if school is None:
        raise dash.exceptions.PreventUpdate
    return (*[school.get(f.name) for f in FIELDS], None)
