"""Login: exchange a username and password for an API token kept in the browser session.

A user who must choose a new password first (a generated or reset one: /auth/me says
`must_change_password`) is not let in yet: the form asks for the new password, changes it through
the API, logs in again with it, and only then keeps the session and lands.

It lands where `?next=` says — the page that was opened without a session, such as a notice's
link to the phone page — when that is a path of this cockpit (dashboard.landing.safe_next), else
on the overview.
"""

import dash
import flask
from dash import Input, Output, State, callback, dcc, html

from dashboard import api_client
from dashboard.components import error_message
from dashboard.i18n import t
from dashboard.landing import safe_next
from dashboard.page import page_callback

dash.register_page(__name__, path="/login", title="登录 · 教育信息化数字驾驶舱")


def layout(**query) -> html.Div:
    """The login form, and where it lands (`?next=`, if it is safe)."""
    return html.Div(className="login-box", children=[
        dcc.Store(id="login-next", data=safe_next(query.get("next"))),
        html.H2(id="login-heading"),
        html.Label(id="login-username-label", htmlFor="login-username"),
        dcc.Input(id="login-username", type="text", autoComplete="username"),
        html.Label(id="login-password-label", htmlFor="login-password"),
        dcc.Input(id="login-password", type="password", autoComplete="current-password", n_submit=0),
        html.Button(id="login-submit", n_clicks=0),
        html.Div(id="login-error", className="muted"),
        dcc.Store(id="login-pending"),  # the token of a login that must change its password first
        html.Div(id="login-change", hidden=True, children=[
            html.P(id="login-change-note"),
            html.Label(id="login-new-label", htmlFor="login-new"),
            dcc.Input(id="login-new", type="password", autoComplete="new-password"),
            html.Label(id="login-repeat-label", htmlFor="login-repeat"),
            dcc.Input(id="login-repeat", type="password", autoComplete="new-password", n_submit=0),
            html.Button(id="login-change-submit", n_clicks=0),
            html.Div(id="login-change-error", className="muted"),
        ]),
    ])


@callback(Output("login-heading", "children"), Output("login-username-label", "children"),
          Output("login-password-label", "children"), Output("login-submit", "children"),
          Output("login-change-note", "children"), Output("login-new-label", "children"),
          Output("login-repeat-label", "children"), Output("login-change-submit", "children"),
          Input("lang", "data"))
@page_callback()
def words(lang: str):
    """Form words in the chosen language."""
    return (t("title", lang), t("username", lang), t("password", lang), t("login", lang),
            t("password.must_change", lang), t("password.new", lang), t("password.repeat", lang),
            t("password.change", lang))


@callback(Output("session", "data"), Output("url", "href", allow_duplicate=True), Output("login-error", "children"),
          Output("login-pending", "data"), Output("login-change", "hidden"),
          Input("login-submit", "n_clicks"), Input("login-password", "n_submit"),
          State("login-username", "value"), State("login-password", "value"), State("lang", "data"),
          State("login-next", "data"), prevent_initial_call=True)
@page_callback()
def submit(clicks: int, submits: int, username: str | None, password: str | None, lang: str,
           landing: str | None = None):
    """Log in through the API and land on the page asked for, else the user's own scope (or first ask for a
    new password)."""
    if not clicks and not submits:  # the form was just drawn (a page's layout arrives after the first call)
        raise dash.exceptions.PreventUpdate
    if not username or not password:  # nothing to ask the API yet
        return dash.no_update, dash.no_update, t("login.missing", lang), None, True
    try:
        token = api_client.login(username or "", password or "", browser_address())
        user = api_client.get(token, "/api/v1/auth/me")
    except api_client.ApiError as exc:  # a refused login is said in the form's own words, not as an API error
        key = FAILURES.get(exc.status)
        return dash.no_update, dash.no_update, t(key, lang) if key else error_message(exc, lang), None, True
    if user.get("must_change_password"):  # not in yet: the new password first
        return dash.no_update, dash.no_update, "", token, False
    return {"token": token, "user": user}, safe_next(landing), "", None, True


@callback(Output("session", "data", allow_duplicate=True), Output("url", "href", allow_duplicate=True),
          Output("login-change-error", "children"),
          Input("login-change-submit", "n_clicks"), Input("login-repeat", "n_submit"),
          State("login-pending", "data"), State("login-username", "value"), State("login-password", "value"),
          State("login-new", "value"), State("login-repeat", "value"), State("lang", "data"),
          State("login-next", "data"), prevent_initial_call=True)
@page_callback()
def change_password(clicks: int, submits: int, token: str | None, username: str | None, current: str | None,
                    new: str | None, repeat: str | None, lang: str, landing: str | None = None):
    """Change the password through the API (its policy decides and says why not), log in with the new one
    and land."""
    if (not clicks and not submits) or not token:
        raise dash.exceptions.PreventUpdate
    if not new or new != repeat:
        return dash.no_update, dash.no_update, t("password.mismatch", lang)
    try:
        api_client.send(token, "POST", "/api/v1/auth/password", {"current_password": current or "",
                                                                 "new_password": new})  # 204: no answer
        fresh = api_client.login(username or "", new, browser_address())  # the old token may have been revoked
        user = api_client.get(fresh, "/api/v1/auth/me")
    except api_client.ApiError as exc:  # the policy's reason (too short, contains the username…) as the API says it
        return dash.no_update, dash.no_update, html.Span([error_message(exc, lang), " ", str(exc)], role="alert")
    return {"token": fresh, "user": user}, safe_next(landing), ""


FAILURES = {401: "login.failed", 423: "login.locked", 429: "login.throttled"}


def browser_address() -> str | None:
    """The address of the browser this login callback serves (the API throttles failed logins by it)."""
    return flask.request.remote_addr if flask.has_request_context() else None
