"""The cockpit application: shell (header, session, language) around Dash pages."""

from pathlib import Path

import dash
from dash import Dash, Input, Output, State, callback, dcc, html

from dashboard.i18n import t
from dashboard.settings import dashboard_settings

PAGES = Path(__file__).parent / "pages"


def shell() -> html.Div:
    """The frame every page sits in: header, navigation, session and language stores."""
    return html.Div([
        dcc.Location(id="url"),
        dcc.Store(id="session", storage_type="session"),
        dcc.Store(id="lang", storage_type="local", data="zh"),
        html.Header(className="cockpit-header", children=[
            html.H1(id="app-title", className="cockpit-title"),
            html.Nav(id="app-nav", className="cockpit-nav"),
            html.Div(className="cockpit-tools", children=[
                html.Span(id="app-user", className="muted"),
                html.Button("EN / 中文", id="app-lang-toggle", className="secondary"),
                html.Button(id="app-logout", className="secondary"),
            ]),
        ]),
        html.Main(className="cockpit-body", children=dash.page_container),
    ])


@callback(
    Output("app-title", "children"), Output("app-nav", "children"), Output("app-logout", "children"),
    Output("app-user", "children"),
    Input("lang", "data"), Input("session", "data"),
)
def render_header(lang: str, session: dict | None):
    """Header words in the chosen language, and who is logged in."""
    lang = lang or "zh"
    nav = [dcc.Link(t("nav.overview", lang), href="/")]
    user = session["user"]["display_name"] if session else ""
    return t("title", lang), nav, t("logout", lang), user


@callback(Output("lang", "data"), Input("app-lang-toggle", "n_clicks"), State("lang", "data"),
          prevent_initial_call=True)
def toggle_language(_clicks: int, lang: str | None) -> str:
    """Switch between Chinese and English."""
    return "en" if (lang or "zh") == "zh" else "zh"


@callback(Output("session", "data", allow_duplicate=True), Output("url", "href", allow_duplicate=True),
          Input("app-logout", "n_clicks"), prevent_initial_call=True)
def logout(_clicks: int):
    """Forget the token and go to the login page."""
    return None, "/login"


@callback(Output("url", "href", allow_duplicate=True), Input("url", "pathname"), State("session", "data"),
          prevent_initial_call="initial_duplicate")
def require_login(pathname: str, session: dict | None):
    """Send anyone without a session to the login page."""
    if session or pathname == "/login":
        return dash.no_update
    return "/login"


def create_app() -> Dash:
    """Build the cockpit application."""
    app = Dash(__name__, use_pages=True, pages_folder=str(PAGES), title="教育信息化数字驾驶舱",
               suppress_callback_exceptions=True, update_title=None)
    app.layout = shell
    return app


def main() -> None:
    """Serve the cockpit."""
    s = dashboard_settings()
    create_app().run(host=s.host, port=s.port, debug=False)
