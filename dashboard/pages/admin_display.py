"""管理 · 展示链接 Administration, display links: issue a link for a wall screen (a scope inside the admin's,
the pages it rotates through, how long each stays), list the links of the admin's scope, revoke one.

A link's address (the cockpit's own origin and `/wall#key=…`) is shown once, in the answer to the click
that issued it: the API keeps only a hash of its secret. The pages to choose from are those in everyone's
navigation, from Dash's page registry in its order, so a page added to the cockpit is offered here too.
"""

import dash
import flask
from dash import ALL, Input, Output, State, callback, dcc, html

from dashboard import api_client
from dashboard.components import panel, table
from dashboard.i18n import NO_DATA, fmt_time, t
from dashboard.page import page_callback
from dashboard.pages.admin_common import (
    ADMIN_API,
    LEVELS,
    LIST_LIMIT,
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
    secret,
    total_note,
)

dash.register_page(__name__, path="/admin/display", title="管理 · 展示链接 · 教育信息化数字驾驶舱", order=27)

P = "admin-display"
LINKS = f"{ADMIN_API}/display-links"
DEFAULT_ROTATE_S = 60
FIELDS = (
    Field("label", props=(("maxLength", 100),)),
    Field("scope_level", options=choices(LEVELS, "")),
    Field("scope_code", props=(("maxLength", 32),)),
    Field("rotate_s", kind="number", props=(("min", 5), ("max", 3600), ("step", 1), ("value", DEFAULT_ROTATE_S))),
)
FORM = [f"{P}-{f.name}" for f in FIELDS]


def offered_pages() -> list[dict]:
    """The pages a link may rotate through: those in everyone's navigation, in the registry's order."""
    return [p for p in dash.page_registry.values() if p.get("nav") and "roles" not in p]


def layout(**_query) -> html.Div:
    """The links of the admin's scope beside the form that issues one."""
    return frame(P, [
        dcc.Store(id=f"{P}-changed", data=0),
        dcc.Store(id=f"{P}-items", data=[]),
        html.Div(className="admin-grid", children=[
            panel(html.Div([html.Div(id=f"{P}-row-message"), html.Div(id=f"{P}-list", className="scroll table-440"),
                            html.Div(id=f"{P}-note")]), title=html.Span(id=f"{P}-list-title")),
            panel(html.Div(className="admin-form", children=[
                html.P(id=f"{P}-about", className="muted"),
                *[f.component(P) for f in FIELDS],
                html.Div(className="admin-field", children=[
                    html.Label(id=f"{P}-pages-label", htmlFor=f"{P}-pages"),
                    dcc.Checklist(id=f"{P}-pages", inline=True, className="admin-choice", value=["/"],
                                  options=[{"label": p["path"], "value": p["path"]} for p in offered_pages()])]),
                html.Div(className="form-row", children=[html.Button(id=f"{P}-issue", n_clicks=0)]),
                html.Div(id=f"{P}-result")]), title=html.Span(id=f"{P}-form-title")),
        ]),
    ])


register_gate(P, "display", LINKS)
register_words({
    (f"{P}-list-title", "children"): "admin.display.title", (f"{P}-form-title", "children"): "admin.display.form",
    (f"{P}-about", "children"): "admin.display.about", (f"{P}-issue", "children"): "admin.display.issue",
    (f"{P}-pages-label", "children"): "admin.field.pages", **form_words(P, FIELDS)})


@callback(Output(f"{P}-pages", "options"), Input("lang", "data"))
@page_callback(needs_session=False)
def page_options(lang: str):
    """The pages to choose from, by their names in the navigation (read when drawn: every page is registered)."""
    return [{"label": t(p["nav"], lang), "value": p["path"]} for p in offered_pages()]


@callback(Output(f"{P}-scope_level", "value"), Output(f"{P}-scope_code", "value"), Input("session", "data"))
@page_callback()
def own_scope(session: dict):
    """The form starts at the admin's own scope (a link may name any scope inside it)."""
    return session["user"]["scope_level"], session["user"]["scope_code"]


def page_names(paths: list[str], lang: str) -> str:
    """A link's pages by their names in the navigation, in its order (a path the cockpit lacks as it is)."""
    names = {p["path"]: t(p["nav"], lang) for p in offered_pages()}
    return " → ".join(names.get(path, path) for path in paths)


def link_rows(links: list[dict], lang: str) -> list[list]:
    """One row per link: label, scope, pages, interval, who issued it when, its last use, state and revoke."""
    rows = []
    for link in links:
        revoked = link.get("revoked_at") is not None
        state = (f"{t('admin.display.revoked', lang)} {fmt_time(link['revoked_at'])} · {link.get('revoked_by') or ''}"
                 if revoked else t("admin.display.live", lang))
        action = "" if revoked else html.Button(t("admin.display.revoke", lang), n_clicks=0, className="small",
                                                id={"type": "admin-display-revoke", "id": link["id"]})
        rows.append([link["id"], link["label"], scope_text(link["scope_level"], link["scope_code"], None, lang),
                     page_names(link["pages"], lang), f"{link['rotate_s']} s",
                     f"{link['created_by']} · {fmt_time(link['created_at'])}",
                     fmt_time(link["last_used_at"]) if link.get("last_used_at") else NO_DATA, state, action])
    return rows


@callback(Output(f"{P}-list", "children"), Output(f"{P}-note", "children"), Output(f"{P}-items", "data"),
          Input(f"{P}-changed", "data"), Input("lang", "data"), State("session", "data"))
@page_callback(f"{P}-list-error", lambda box, **_: (box, None, []), back=False)
def refresh(_changed: int, lang: str, session: dict):
    """The display links of the admin's scope, live ones first."""
    answer = api_client.get(session["token"], LINKS, limit=LIST_LIMIT)
    headers = ["#", t("name", lang), t("admin.scope", lang), t("admin.field.pages", lang),
               t("admin.field.rotate_s", lang), t("admin.display.created", lang), t("admin.display.last_used", lang),
               t("status", lang), t("patrol.actions", lang)]
    items = [{"id": i["id"], "label": i["label"]} for i in answer["items"]]  # what a revoke button needs
    return table(headers, link_rows(answer["items"], lang), lang, f"{P}-table"), total_note(answer, lang,
                                                                                             f"{P}-total"), items


def issued(answer: dict, lang: str) -> html.Div:
    """A link just issued: its full address, shown this once."""
    origin = flask.request.host_url.rstrip("/") if flask.has_request_context() else ""
    return secret(t("admin.display.issued", lang).format(label=answer.get("label", "")),
                  [(t("admin.display.url", lang), origin + answer["wall_path"])], lang, f"{P}-secret")


def whole(value: object) -> object:
    """A number input's value as the API takes seconds: 30.0 as 30; anything else as typed (the API says why not)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


@callback(Output(f"{P}-result", "children"), Output(f"{P}-changed", "data"),
          Input(f"{P}-issue", "n_clicks"), *[State(i, "value") for i in FORM], State(f"{P}-pages", "value"),
          State(f"{P}-changed", "data"), State("lang", "data"), State("session", "data"), prevent_initial_call=True)
@page_callback()
def issue(_clicks, label, scope_level, scope_code, rotate_s, pages, changed, lang, session):
    """Issue the link through the API; its address (once), or the API's refusal, beside the form."""
    if clicked() is None:
        raise dash.exceptions.PreventUpdate
    if not pages:
        return hint(t("admin.display.none_chosen", lang), f"{P}-hint"), dash.no_update
    order = [p["path"] for p in offered_pages()]
    fields = {"label": label, "scope_level": scope_level, "scope_code": scope_code,
              "pages": sorted(pages, key=lambda p: order.index(p) if p in order else len(order)),
              "rotate_s": DEFAULT_ROTATE_S if rotate_s in (None, "") else whole(rotate_s)}
    try:
        answer = api_client.send(session["token"], "POST", LINKS, body(fields)) or {}
    except api_client.ApiError as exc:
        return refusal(exc, lang, f"{P}-error"), dash.no_update
    return issued(answer, lang), (changed or 0) + 1


@callback(Output(f"{P}-row-message", "children"), Output(f"{P}-changed", "data", allow_duplicate=True),
          Input({"type": "admin-display-revoke", "id": ALL}, "n_clicks"), State(f"{P}-items", "data"),
          State(f"{P}-changed", "data"), State("lang", "data"), State("session", "data"), prevent_initial_call=True)
@page_callback()
def revoke(_clicks, items: list[dict], changed, lang, session):
    """Revoke a link: its screen stops at once and says so."""
    trigger = clicked()
    if trigger is None:
        raise dash.exceptions.PreventUpdate
    label = next((i["label"] for i in items or [] if i["id"] == trigger["id"]), str(trigger["id"]))
    try:
        api_client.send(session["token"], "POST", f"{LINKS}/{int(trigger['id'])}/revoke")
    except api_client.ApiError as exc:
        return refusal(exc, lang, f"{P}-row-error"), dash.no_update
    return done(t("admin.display.revoked_done", lang).format(label=label), f"{P}-done"), (changed or 0) + 1
