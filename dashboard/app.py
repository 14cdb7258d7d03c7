"""The cockpit application: shell (header, session, language, downloads) around Dash pages."""

from pathlib import Path

import dash
from dash import Dash, Input, Output, State, callback, dcc, html

from dashboard import api_client, export, snapshot_images  # noqa: F401 - export registers the download callback
from dashboard.i18n import DEFAULT_LANG, t
from dashboard.landing import login_href
from dashboard.page import page_callback
from dashboard.scope import (
    LESSONS,
    PERIODS,
    carry,
    lens_params,
    period_params,
    requested_period,
    with_view,
)
from dashboard.settings import dashboard_settings

PAGES = Path(__file__).parent / "pages"


def shell() -> html.Div:
    """The frame every page sits in: header, navigation, session and language stores, downloads."""
    return html.Div(className="cockpit", children=[
        dcc.Location(id="url", refresh="callback-nav"),
        dcc.Store(id="session", storage_type="session"),
        dcc.Store(id="lang", storage_type="local", data=DEFAULT_LANG),
        dcc.Download(id="app-download"),
        html.Header(className="cockpit-header", children=[
            html.H1(id="app-title", className="cockpit-title"),
            html.Nav(id="app-nav", className="cockpit-nav"),
            html.Div(className="cockpit-tools", children=[
                html.Div(id="app-period-picker", className="period-picker", hidden=True, children=[
                    dcc.Dropdown(id="app-period", value="now", clearable=False, searchable=False,
                                 options=period_options(None, DEFAULT_LANG), style={"width": "130px"}),
                    dcc.RadioItems(id="app-hours", value="all", className="hours-lens", inline=True,
                                   options=hours_options(DEFAULT_LANG)),
                ]),
                html.Span(id="app-user", className="user"),
                html.Button(id="app-lang-toggle", className="secondary"),
                html.Button(id="app-logout", className="secondary"),
            ]),
        ]),
        html.Main(className="cockpit-body", children=[html.Div(id="app-export-error"), dash.page_container]),
    ])


def period_options(search: str | None, lang: str) -> list[dict]:
    """The periods to choose from; a from/to range of the URL as one more, "custom", with its days."""
    options = [{"label": t(f"period.{p}", lang), "value": p} for p in PERIODS]
    params = period_params(search)
    if "from" in params or "to" in params:
        days = f"{params.get('from', '…')}–{params.get('to', '…')}"
        options.append({"label": f"{t('period.custom', lang)} {days}", "value": "custom"})
    return options


def hours_options(lang: str) -> list[dict]:
    """The whole day, or the lesson hours of the period's school days only."""
    return [{"label": t(f"hours.{h}", lang), "value": h} for h in ("all", LESSONS)]


def nav_links(pathname: str | None, search: str | None, lang: str, available: frozenset[str],
              role: str | None = None) -> list:
    """Links to the pages in the navigation whose API routes exist, each keeping the scope in the URL.

    The pages are Dash's page registry (in `order`); a page is in the navigation when it registers
    `nav` (its label's key in dashboard.strings) and `api_route` (the API route it needs, as the
    API's OpenAPI document names it), and, when it registers `roles`, the user's role is one of them
    (the administration, for admins only; the API refuses everyone else anyway).
    """
    links = []
    for page in dash.page_registry.values():
        key, route, path = page.get("nav"), page.get("api_route"), page["path"]
        if key is None or route not in available or ("roles" in page and role not in page["roles"]):
            continue
        active = (pathname or "/") == path
        links.append(dcc.Link(t(key, lang), href=carry(path, search), id=f"app-nav-{path.strip('/') or 'overview'}",
                              className="active" if active else ""))
    return links


@callback(
    Output("app-title", "children"), Output("app-nav", "children"), Output("app-logout", "children"),
    Output("app-user", "children"), Output("app-lang-toggle", "children"), Output("app-logout", "hidden"),
    Input("lang", "data"), Input("session", "data"), Input("url", "pathname"), Input("url", "search"),
)
@page_callback(needs_session=False)
def render_header(lang: str, session: dict | None, pathname: str | None, search: str | None):
    """Header words in the chosen language, the pages the API supports, and who is logged in."""
    nav = nav_links(pathname, search, lang, api_client.routes(), session["user"]["role"]) if session else []
    user = session["user"]["display_name"] if session else ""
    return t("title", lang), nav, t("logout", lang), user, t("language", lang), not session


@callback(Output("app-period", "options"), Output("app-period", "value"), Output("app-period-picker", "hidden"),
          Output("app-period-picker", "title"),
          Input("url", "search"), Input("lang", "data"), Input("session", "data"))
@page_callback(needs_session=False)
def show_period(search: str | None, lang: str, session: dict | None):
    """The period picker shows the period of the URL (now when none), to whoever is logged in."""
    return period_options(search, lang), requested_period(search), not session, t("period", lang)


@callback(Output("url", "search", allow_duplicate=True), Input("app-period", "value"), State("url", "search"),
          prevent_initial_call=True)
def choose_period(period: str | None, search: str | None) -> str:
    """A period chosen goes into the URL (beside the scope), where every page and link reads it."""
    if not period or period == "custom" or period == requested_period(search):
        raise dash.exceptions.PreventUpdate
    return with_view(search, period=period)


@callback(Output("app-hours", "options"), Output("app-hours", "value"), Output("app-hours", "style"),
          Output("app-hours", "title"), Input("url", "search"), Input("lang", "data"))
@page_callback(needs_session=False)
def show_hours(search: str | None, lang: str):
    """The lens switch shows the URL's choice, and only beside a period (it has no meaning for now)."""
    hidden = {"display": "none"} if not period_params(search) else {}
    return hours_options(lang), lens_params(search).get("hours", "all"), hidden, t("hours.title", lang)


@callback(Output("url", "search", allow_duplicate=True), Input("app-hours", "value"), State("url", "search"),
          prevent_initial_call=True)
def choose_hours(hours: str | None, search: str | None) -> str:
    """The lens chosen goes into the URL beside the period."""
    if not hours or hours == lens_params(search).get("hours", "all"):
        raise dash.exceptions.PreventUpdate
    return with_view(search, hours=hours if hours == LESSONS else None)


@callback(Output("lang", "data"), Input("app-lang-toggle", "n_clicks"), State("lang", "data"),
          prevent_initial_call=True)
@page_callback()
def toggle_language(_clicks: int, lang: str) -> str:
    """Switch between Chinese and English."""
    return "en" if lang == "zh" else "zh"


@callback(Output("session", "data", allow_duplicate=True), Output("url", "href", allow_duplicate=True),
          Input("app-logout", "n_clicks"), prevent_initial_call=True)
def logout(_clicks: int):
    """Forget the token and go to the login page."""
    return None, "/login"


@callback(Output("url", "href", allow_duplicate=True), Input("url", "pathname"), State("session", "data"),
          State("url", "search"), prevent_initial_call="initial_duplicate")
def require_login(pathname: str, session: dict | None, search: str | None = None):
    """Send anyone without a session to the login page (a wall screen logs in with its display link)."""
    if session or pathname in ("/login", "/wall"):
        return dash.no_update
    return login_href(pathname, search)  # the login comes back to the page asked for (dashboard/landing.py)


def create_app() -> Dash:
    """Build the cockpit application."""
    app = Dash(__name__, use_pages=True, pages_folder=str(PAGES), title="教育信息化数字驾驶舱",
               suppress_callback_exceptions=True, update_title=None)
    app.layout = shell
    snapshot_images.register(app.server)  # the 巡课 wall's pictures, through the API's signed links
    return app


def main() -> None:
    """Serve the cockpit."""
    s = dashboard_settings()
    create_app().run(host=s.host, port=s.port, debug=False)
