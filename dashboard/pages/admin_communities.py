"""管理 · 教联体 Administration, education communities: the communities within the admin's scope, a form to
found one or change it, and a school joining (as lead or member) or leaving one (the API keeps both in the
history)."""

import dash
from dash import ALL, Input, Output, State, callback, dcc, html

from dashboard import api_client
from dashboard.components import panel, table
from dashboard.i18n import fmt_text, t
from dashboard.page import page_callback
from dashboard.pages.admin_common import (
    ADMIN_API,
    COMMUNITY_KINDS,
    LIST_LIMIT,
    MEMBER_ROLES,
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
    total_note,
)

dash.register_page(__name__, path="/admin/communities", title="管理 · 教联体 · 教育信息化数字驾驶舱", order=23)

P = "admin-communities"
FIELDS = (
    Field("code", label="admin.field.community_code", props=(("maxLength", 32),)),
    Field("name", label="admin.field.community_name", props=(("maxLength", 100),)),
    Field("kind", options=choices(COMMUNITY_KINDS, "community.kind.")),
    Field("lead_school_code", props=(("maxLength", 10),)),
    Field("founded_on", props=(("placeholder", "2025-09-01"), ("maxLength", 10))),
)
MEMBER_FIELDS = (
    Field("member_community", label="admin.field.community_code", props=(("maxLength", 32),)),
    Field("member_school", label="admin.field.school_code", props=(("maxLength", 10),)),
    Field("member_role", label="admin.field.member_role", options=choices(MEMBER_ROLES, "admin.member."),
          props=(("value", "member"),)),
)
FORM = [f"{P}-{f.name}" for f in FIELDS]


def layout(**_query) -> html.Div:
    """The list (with each community's members) beside the community form and the members' form."""
    return frame(P, [
        dcc.Store(id=f"{P}-changed", data=0),
        dcc.Store(id=f"{P}-items", data=[]),
        html.Div(className="admin-grid", children=[
            panel(html.Div([
                html.Div(className="toolbar", children=[
                    dcc.Input(id=f"{P}-q", type="search", debounce=True, className="search", maxLength=100)]),
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
                    *[f.component(P) for f in MEMBER_FIELDS],
                    html.Div(className="form-row", children=[
                        html.Button(id=f"{P}-join", n_clicks=0),
                        html.Button(id=f"{P}-leave", n_clicks=0, className="secondary")]),
                    html.Div(id=f"{P}-member-result")]), title=html.Span(id=f"{P}-member-title")),
            ]),
        ]),
    ])


register_gate(P, "communities", f"{ADMIN_API}/communities")
register_words({
    (f"{P}-q", "placeholder"): "admin.communities.search", (f"{P}-list-title", "children"): "admin.communities.title",
    (f"{P}-form-title", "children"): "admin.communities.form", (f"{P}-create", "children"): "admin.create",
    (f"{P}-save", "children"): "admin.save", (f"{P}-member-title", "children"): "admin.communities.members",
    (f"{P}-join", "children"): "admin.communities.join", (f"{P}-leave", "children"): "admin.communities.leave",
    **form_words(P, FIELDS), **form_words(P, MEMBER_FIELDS)})


def members_text(community: dict, lang: str) -> str:
    """A community's members as the API lists them (lead first), or their count when it gives only that."""
    members = community.get("members")
    if isinstance(members, list):
        ordered = sorted(members, key=lambda m: m.get("role") != "lead")
        return "、".join(fmt_text(m.get("school_name") or m.get("school_code"),
                                 f"({t('admin.member.' + m['role'], lang)})" if m.get("role") else None)
                        for m in ordered) or "—"
    return fmt_text(members if members is not None else community.get("member_count"))


def community_rows(communities: list[dict], lang: str) -> list[list]:
    """One row per community: code, name, kind, lead school, founded, members, and its edit and history."""
    rows = []
    for c in communities:
        code = c["code"]
        actions = html.Span(className="actions", children=[
            html.Button(t("admin.edit", lang), id={"type": "admin-community-edit", "code": code}, n_clicks=0,
                        className="small"),
            dcc.Link(t("admin.history", lang), href=f"/admin/history?entity=community&key={code}")])
        rows.append([code, c.get("name") or "", t(f"community.kind.{c['kind']}", lang) if c.get("kind") else "—",
                     fmt_text(c.get("lead_school_name") or c.get("lead_school_code")), fmt_text(c.get("founded_on")),
                     members_text(c, lang), actions])
    return rows


@callback(Output(f"{P}-list", "children"), Output(f"{P}-note", "children"), Output(f"{P}-items", "data"),
          Input(f"{P}-q", "value"), Input(f"{P}-changed", "data"), Input("lang", "data"), State("session", "data"))
@page_callback(f"{P}-list-error", lambda box, **_: (box, None, []), back=False)
def refresh(q: str | None, _changed: int, lang: str, session: dict):
    """The communities within the admin's scope matching the search."""
    answer = api_client.get(session["token"], f"{ADMIN_API}/communities", **body({"q": q}), limit=LIST_LIMIT)
    headers = [t("admin.field.community_code", lang), t("name", lang), t("type", lang), t("communities.lead", lang),
               t("communities.founded", lang), t("communities.members", lang), t("patrol.actions", lang)]
    return (table(headers, community_rows(answer["items"], lang), lang, f"{P}-table"),
            total_note(answer, lang, f"{P}-total"), answer["items"])


@callback(Output(f"{P}-result", "children"), Output(f"{P}-changed", "data"),
          Input(f"{P}-create", "n_clicks"), Input(f"{P}-save", "n_clicks"),
          *[State(i, "value") for i in FORM], State(f"{P}-changed", "data"), State("lang", "data"),
          State("session", "data"), prevent_initial_call=True)
@page_callback()
def submit(_create, _save, code, name, kind, lead_school_code, founded_on, changed, lang, session):
    """Found the community, or save its changes; the API's answer or refusal beside the form."""
    trigger = clicked()
    if trigger is None:
        raise dash.exceptions.PreventUpdate
    fields = {"name": name, "kind": kind, "lead_school_code": lead_school_code, "founded_on": founded_on}
    return counted(create_or_save(P, session, lang, "communities", "code", code, fields,
                                  "admin.communities.code_first"), changed)


@callback(*[Output(i, "value") for i in FORM], Output(f"{P}-member_community", "value"),
          Output(f"{P}-result", "children", allow_duplicate=True),
          Input({"type": "admin-community-edit", "code": ALL}, "n_clicks"), State(f"{P}-items", "data"),
          prevent_initial_call=True)
def edit(_clicks, items: list[dict]):
    """The edit button of a row puts that community into both forms."""
    trigger = clicked()
    community = next((c for c in items or [] if trigger and c["code"] == trigger["code"]), None)
    if community is None:
        raise dash.exceptions.PreventUpdate
    return (*[community.get(f.name) for f in FIELDS], community["code"], None)


@callback(Output(f"{P}-member-result", "children"), Output(f"{P}-changed", "data", allow_duplicate=True),
          Input(f"{P}-join", "n_clicks"), Input(f"{P}-leave", "n_clicks"), State(f"{P}-member_community", "value"),
          State(f"{P}-member_school", "value"), State(f"{P}-member_role", "value"), State(f"{P}-changed", "data"),
          State("lang", "data"), State("session", "data"), prevent_initial_call=True)
@page_callback()
def membership(_join, _leave, community, school, role, changed, lang, session):
    """A school joins the community in the role chosen (or changes role), or leaves it."""
    trigger = clicked()
    if trigger is None:
        raise dash.exceptions.PreventUpdate
    community, school = (community or "").strip(), (school or "").strip()
    if not community or not school:
        return hint(t("admin.communities.member_first", lang), f"{P}-hint"), dash.no_update
    path = f"{ADMIN_API}/communities/{part(community)}/members/{part(school)}"
    try:
        if trigger == f"{P}-join":
            api_client.send(session["token"], "PUT", path, {"role": role or "member"})
            key = "admin.communities.joined"
        else:
            api_client.send(session["token"], "DELETE", path)
            key = "admin.communities.left"
    except api_client.ApiError as exc:
        return refusal(exc, lang, f"{P}-member-error"), dash.no_update
    return done(t(key, lang).format(school=school, community=community), f"{P}-member-done"), (changed or 0) + 1
