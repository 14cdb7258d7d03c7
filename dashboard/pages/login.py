"""Login: exchange a username and password for an API token kept in the browser session."""

import dash
import flask
from dash import Input, Output, State, callback, dcc, html

from dashboard import api_client
from dashboard.components import error_message
from dashboard.i18n import t
from dashboard.page import page_callback

dash.register_page(__name__, path="/login", title="登录 · 教育信息化数字驾驶舱")


def layout(**_query) -> html.Div:
    """The login form."""
    return html.Div(className="login-box", children=[
        html.H2(id="login-heading"),
        html.Label(id="login-username-label", htmlFor="login-username"),
        dcc.Input(id="login-username", type="text", autoComplete="username"),
        html.Label(id="login-password-label", htmlFor="login-password"),
        dcc.Input(id="login-password", type="password", autoComplete="current-password", n_submit=0),
        html.Button(id="login-submit", n_clicks=0),
        html.Div(id="login-error", className="muted"),
    ])


@callback(Output("login-heading", "children"), Output("login-username-label", "children"),
          Output("login-password-label", "children"), Output("login-submit", "children"),
          Input("lang", "data"))
@page_callback()
def words(lang: str):
    """Form words in the chosen language."""
    return t("title", lang), t("username", lang), t("password", lang), t("login", lang)


@callback(Output("session", "data"), Output("url", "href", allow_duplicate=True), Output("login-error", "children"),
          Input("login-submit", "n_clicks"), Input("login-password", "n_submit"),
          State("login-username", "value"), State("login-password", "value"), State("lang", "data"),
          prevent_initial_call=True)
@page_callback()
def submit(clicks: int, submits: int, username: str | None, password: str | None, lang: str):
    """Log in through the API and land on the user's own scope."""
    if not clicks and not submits:  # the form was just drawn (a page's layout arrives after the first call)
        raise dash.exceptions.PreventUpdate
    if not username or not password:  # nothing to ask the API yet
        return dash.no_update, dash.no_update, t("login.missing", lang)
    try:
        token = api_client.login(username or "", password or "", browser_address())
        user = api_client.get(token, "/api/v1/auth/me")
    except api_client.ApiError as exc:  # a refused login is said in the form's own words, not as an API error
        key = FAILURES.get(exc.status)
        return dash.no_update, dash.no_update, t(key, lang) if key else error_message(exc, lang)
    return {"token": token, "user": user}, "/", ""


FAILURES = {401: "login.failed", 423: "login.locked", 429: "login.throttled"}


def browser_address() -> str | None:
    """The address of the browser this login callback serves (the API throttles failed logins by it)."""
    return flask.request.remote_addr if flask.has_request_context() else None
