"""管理 · 用户 Administration, users: the accounts within the admin's scope, a form to create one or change
its role and scope, disable/enable and password resets from the list, and the accounts locked after failed
logins with a way to unlock them.

A password the API generates (a new account without one, a reset) is shown once, in the answer to the
click that made it. The navigation shows this page (the administration's first section) to admins only;
anyone else who opens it is told by the gate (admin_common) that they may not, in the API's own words.
"""

import dash
from dash import ALL, Input, Output, State, callback, dcc, html

from dashboard import api_client
from dashboard.components import panel, table
from dashboard.i18n import fmt_time, t
from dashboard.page import page_callback
from dashboard.pages.admin_common import (
    ADMIN_API,
    LEVELS,
    LIST_LIMIT,
    ROLES,
    Field,
    body,
    choices,
    clicked,
    counted,
    create_or_save,
    done,
    form_words,
    frame,
    part,
    refusal,
    register_gate,
    register_words,
    scope_text,
    secret,
    total_note,
)

dash.register_page(__name__, path="/admin", title="管理 · 教育信息化数字驾驶舱", order=20,
                   nav="nav.admin", api_route=f"{ADMIN_API}/users", roles=("admin",))

P = "admin-users"
FIELDS = (
    Field("username", props=(("maxLength", 64),)),
    Field("display_name", props=(("maxLength", 100),)),
    Field("role", options=choices(ROLES, "admin.role.")),
    Field("scope_level", options=choices(LEVELS, "")),
    Field("scope_code", props=(("maxLength", 32),)),
    Field("password", kind="password", label="admin.field.initial_password", props=(("maxLength", 1024),)),
)
FORM = [f"{P}-{f.name}" for f in FIELDS]


def layout(**_query) -> html.Div:
    """The users' list beside the form; the locked accounts below."""
    return frame(P, [
        dcc.Store(id=f"{P}-changed", data=0),  # bumped after every action so the lists re-read at once
        dcc.Store(id=f"{P}-items", data=[]),  # the users listed, for the edit button to fill the form
        dcc.Link(id=f"{P}-display", href="/admin/display", className="admin-more"),  # wall screens' links
        html.Div(className="admin-grid", children=[
            panel(html.Div([
                html.Div(className="toolbar", children=[
                    dcc.Input(id=f"{P}-q", type="search", debounce=True, className="search", maxLength=100)]),
                html.Div(id=f"{P}-row-message"),
                html.Div(id=f"{P}-list", className="scroll table-440"),
                html.Div(id=f"{P}-note")]), title=html.Span(id=f"{P}-list-title")),
            panel(html.Div(className="admin-form", children=[
                *[f.component(P) for f in FIELDS],
                html.Div(id=f"{P}-password-hint", className="muted"),
                html.Div(className="form-row", children=[
                    html.Button(id=f"{P}-create", n_clicks=0), html.Button(id=f"{P}-save", n_clicks=0,
                                                                           className="secondary")]),
                html.Div(id=f"{P}-result")]), title=html.Span(id=f"{P}-form-title")),
        ]),
        panel(html.Div([html.Div(id=f"{P}-locks-message"), html.Div(id=f"{P}-locks", className="scroll")]),
              title=html.Span(id=f"{P}-locks-title")),
    ])


register_gate(P, "users", f"{ADMIN_API}/users")
register_words({
    (f"{P}-q", "placeholder"): "admin.users.search", (f"{P}-list-title", "children"): "admin.users.title",
    (f"{P}-form-title", "children"): "admin.users.form", (f"{P}-create", "children"): "admin.create",
    (f"{P}-save", "children"): "admin.save", (f"{P}-locks-title", "children"): "admin.locks.title",
    (f"{P}-password-hint", "children"): "admin.users.password_hint",
    (f"{P}-display", "children"): "admin.display.open", **form_words(P, FIELDS)})


def user_rows(users: list[dict], lang: str) -> list[list]:
    """One row per user: name, role, scope, state, and what can be done (edit, disable/enable, new password)."""
    rows = []
    for u in users:
        name, off = u["username"], bool(u.get("disabled"))
        state = [t("admin.users.disabled" if off else "admin.users.active", lang)]
        if u.get("must_change_password"):
            state.append(t("admin.users.must_change", lang))
        actions = html.Span(className="actions", children=[
            html.Button(t("admin.edit", lang), id={"type": "admin-user-edit", "user": name}, n_clicks=0,
                        className="small"),
            html.Button(t("admin.enable" if off else "admin.disable", lang), n_clicks=0, className="small",
                        id={"type": "admin-user-toggle", "user": name, "to": "enable" if off else "disable"}),
            html.Button(t("admin.users.reset", lang), id={"type": "admin-user-reset", "user": name}, n_clicks=0,
                        className="small")])
        rows.append([name, u.get("display_name") or "", t(f"admin.role.{u['role']}", lang),
                     scope_text(u.get("scope_level"), u.get("scope_code"), u.get("scope_name"), lang),
                     " · ".join(state), actions])
    return rows


def lock_rows(locks: list[dict], lang: str) -> list[list]:
    """Accounts failing to log in, locked ones first, each with an unlock button."""
    return [[k["username"], k["failures"], t("yes" if k["locked"] else "no", lang), fmt_time(k.get("locked_until")),
             fmt_time(k.get("last_failure")),
             html.Button(t("admin.locks.unlock", lang), id={"type": "admin-lock-unlock", "user": k["username"]},
                         n_clicks=0, className="small")] for k in locks]


@callback(Output(f"{P}-list", "children"), Output(f"{P}-note", "children"), Output(f"{P}-items", "data"),
          Input(f"{P}-q", "value"), Input(f"{P}-changed", "data"), Input("lang", "data"), State("session", "data"))
@page_callback(f"{P}-list-error", lambda box, **_: (box, None, []), back=False)
def refresh(q: str | None, _changed: int, lang: str, session: dict):
    """The users within the admin's scope matching the search."""
    answer = api_client.get(session["token"], f"{ADMIN_API}/users", **body({"q": q}), limit=LIST_LIMIT)
    headers = [t("username", lang), t("name", lang), t("admin.field.role", lang), t("admin.scope", lang),
               t("status", lang), t("patrol.actions", lang)]
    return (table(headers, user_rows(answer["items"], lang), lang, f"{P}-table"),
            total_note(answer, lang, f"{P}-total"), answer["items"])


@callback(Output(f"{P}-locks", "children"), Input(f"{P}-changed", "data"), Input("lang", "data"),
          State("session", "data"))
@page_callback(f"{P}-locks-error", lambda box, **_: box, back=False)
def refresh_locks(_changed: int, lang: str, session: dict):
    """Accounts with failed logins in a row within the admin's scope."""
    locks = api_client.get(session["token"], "/api/v1/auth/locks")
    headers = [t("username", lang), t("admin.locks.failures", lang), t("admin.locks.locked", lang),
               t("admin.locks.until", lang), t("admin.locks.last", lang), t("patrol.actions", lang)]
    return table(headers, lock_rows(locks, lang), lang, f"{P}-locks-table")


def created(answer: dict, lang: str) -> html.Div:
    """A new account: its generated password shown once, or just that it exists (the admin chose one)."""
    name = answer.get("username", "")
    if answer.get("initial_password"):
        return secret(t("admin.users.created", lang).format(user=name),
                      [(t("username", lang), name), (t("password", lang), answer["initial_password"])], lang,
                      f"{P}-secret")
    return done(t("admin.users.created", lang).format(user=name), f"{P}-done")


@callback(Output(f"{P}-result", "children"), Output(f"{P}-changed", "data"),
          Input(f"{P}-create", "n_clicks"), Input(f"{P}-save", "n_clicks"),
          *[State(i, "value") for i in FORM], State(f"{P}-changed", "data"), State("lang", "data"),
          State("session", "data"), prevent_initial_call=True)
@page_callback()
def submit(_create, _save, username, display_name, role, scope_level, scope_code, password, changed, lang,
           session):
    """Create the account, or save its name, role and scope; the API's answer or refusal beside the form."""
    trigger = clicked()
    if trigger is None:
        raise dash.exceptions.PreventUpdate
    fields = {"display_name": display_name, "role": role, "scope_level": scope_level, "scope_code": scope_code}
    return counted(create_or_save(P, session, lang, "users", "username", username, fields, "admin.users.name_first",
                                  create_only={"password": password}, created=lambda a: created(a, lang)), changed)


@callback(*[Output(i, "value") for i in FORM], Output(f"{P}-result", "children", allow_duplicate=True),
          Input({"type": "admin-user-edit", "user": ALL}, "n_clicks"), State(f"{P}-items", "data"),
          prevent_initial_call=True)
def edit(_clicks, items: list[dict]):
    """The edit button of a row puts that user into the form (no password: that is a reset)."""
    trigger = clicked()
    if trigger is None:
        raise dash.exceptions.PreventUpdate
    user = next((u for u in items or [] if u["username"] == trigger["user"]), None)
    if user is None:
        raise dash.exceptions.PreventUpdate
    return (user["username"], user.get("display_name"), user.get("role"), user.get("scope_level"),
            user.get("scope_code"), "", None)


def reset_shown(user: str, answer: dict | None, lang: str) -> html.Div:
    """A reset password: the generated one shown once, or just that it is set."""
    if answer and answer.get("password"):
        return secret(t("admin.users.reset_done", lang).format(user=user),
                      [(t("username", lang), user), (t("password", lang), answer["password"])], lang, f"{P}-secret")
    return done(t("admin.users.reset_done", lang).format(user=user), f"{P}-done")


@callback(Output(f"{P}-row-message", "children"), Output(f"{P}-changed", "data", allow_duplicate=True),
          Input({"type": "admin-user-toggle", "user": ALL, "to": ALL}, "n_clicks"),
          Input({"type": "admin-user-reset", "user": ALL}, "n_clicks"), State(f"{P}-changed", "data"),
          State("lang", "data"), State("session", "data"), prevent_initial_call=True)
@page_callback()
def row_action(_toggles, _resets, changed, lang, session):
    """Disable or enable an account, or give it a new generated password (shown once)."""
    trigger = clicked()
    if trigger is None:
        raise dash.exceptions.PreventUpdate
    user = trigger["user"]
    try:
        if trigger["type"] == "admin-user-reset":
            answer = api_client.send(session["token"], "POST", f"{ADMIN_API}/users/{part(user)}/password", {})
            message = reset_shown(user, answer, lang)
        else:
            disable = trigger["to"] == "disable"
            api_client.send(session["token"], "PATCH", f"{ADMIN_API}/users/{part(user)}", {"disabled": disable})
            key = "admin.users.disabled_done" if disable else "admin.users.enabled_done"
            message = done(t(key, lang).format(user=user), f"{P}-done")
    except api_client.ApiError as exc:
        return refusal(exc, lang, f"{P}-row-error"), dash.no_update
    return message, (changed or 0) + 1


@callback(Output(f"{P}-locks-message", "children"), Output(f"{P}-changed", "data", allow_duplicate=True),
          Input({"type": "admin-lock-unlock", "user": ALL}, "n_clicks"), State(f"{P}-changed", "data"),
          State("lang", "data"), State("session", "data"), prevent_initial_call=True)
@page_callback()
def unlock(_clicks, changed, lang, session):
    """Lift an account's lock (the API forgets its failures)."""
    trigger = clicked()
    if trigger is None:
        raise dash.exceptions.PreventUpdate
    try:
        api_client.send(session["token"], "DELETE", f"/api/v1/auth/locks/{part(trigger['user'])}")
    except api_client.ApiError as exc:
        return refusal(exc, lang, f"{P}-locks-error"), dash.no_update
    return done(t("admin.locks.unlocked", lang).format(user=trigger["user"]), f"{P}-locks-done"), (changed or 0) + 1
