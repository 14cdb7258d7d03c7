"""大屏 The wall: the cockpit on a command room's screen, unattended, for days, without a login.

An administrator issues a display link (管理 · 展示链接): `/wall#key=…`. The key rides in the URL's
fragment, which the browser never sends to a server, so neither the cockpit nor a proxy logs it. The
screen trades it with the API (`POST /api/v1/auth/display`) for a token of the link's read-only
principal, valid 15 minutes, and keeps it in the `session` store every page reads: the pages
themselves draw the wall, in the link's scope, as for a user of that scope.

- Rotation: the link's pages, in order, each for its interval. A page is drawn afresh when its turn
  comes, so what a page left behind goes with it; the stores hold the link and one token, replaced,
  never appended to, however long the screen runs.
- Keeping: every refresh interval the screen asks the API who it is (`/auth/me`), and exchanges the
  key again once half of the token's life has gone. An API or a network away is said in the bar and
  retried on the next tick, the page kept as it was; the pages' own refresh recovers by itself.
- Revocation: the API answers 401 to the token and to the key at once; the screen then drops both,
  stops rotating and says that the link was revoked.

There is no navigation, logout or administration here (the shell's header is hidden by wall.css), and
the pages do not take clicks: a wall is looked at, not used.
"""

import re
import time

import dash
from dash import Input, Output, State, callback, dcc, html

from dashboard import api_client
from dashboard.i18n import t
from dashboard.page import page_callback
from dashboard.settings import dashboard_settings

dash.register_page(__name__, path="/wall", title="大屏 · 教育信息化数字驾驶舱")

EXCHANGE = "/api/v1/auth/display"
REVOKED = "this display link has been revoked"  # the API's word for it (api/auth/display.py)
_KEY = re.compile(r"(?:^#|[#&])key=([A-Za-z0-9_-]{1,256})(?:&|$)")


def layout(**_query) -> html.Div:
    """The bar (title, page, scope, state), the notice for a link that cannot be shown, and the stage."""
    return html.Div(className="wall", id="wall", children=[
        dcc.Store(id="wall-link"),  # the link's label, scope, pages and rotation, as the exchange answered
        dcc.Store(id="wall-renew-at"),  # when to exchange the key again (seconds since the epoch)
        dcc.Interval(id="wall-keep", interval=dashboard_settings().refresh_ms),
        dcc.Interval(id="wall-rotate", interval=60_000, disabled=True),
        html.Div(className="wall-bar", children=[
            html.H1(id="wall-title", className="wall-title"),
            html.Div(id="wall-page", className="wall-page"),
            html.Div(id="wall-where", className="wall-where"),
            html.Div(id="wall-state", className="wall-state"),
        ]),
        html.Div(id="wall-notice"),
        html.Div(id="wall-stage", className="wall-stage"),
    ])


def key_of(fragment: str | None) -> str | None:
    """The display key in the URL's fragment (`#key=…`), if it has one."""
    match = _KEY.search(fragment or "")
    return match.group(1) if match else None


def wall_pages(available: frozenset[str]) -> list[dict]:
    """The pages a wall can show: those in everyone's navigation (Dash's page registry, in order) whose API
    routes the API serves."""
    return [p for p in dash.page_registry.values()
            if p.get("nav") and "roles" not in p and p.get("api_route") in available]


def state(key: str, lang: str, live: bool) -> html.Span:
    """The bar's word on the connection: live, or retrying."""
    return html.Span(t(key, lang), id="wall-state-word", className="wall-live" if live else "wall-retrying")


def notice(head: str, detail: str, lang: str) -> html.Div:
    """Why the wall shows nothing, in the middle of the screen."""
    return html.Div(className="wall-notice", id="wall-notice-box", role="alert", children=[
        html.Div(t(head, lang), className="wall-notice-head", id="wall-notice-head"),
        html.Div(t(detail, lang), className="wall-notice-detail")])


def _exchange(key: str) -> dict:
    # The key travels in a header of a POST, never in a URL.
    return api_client._send("POST", EXCHANGE, None, headers={"X-Display-Key": key}).json()


def _alive(token: str) -> bool:
    """True while the API takes the token; False when it refuses it (401); ApiError when it cannot answer."""
    try:
        api_client.get(token, "/api/v1/auth/me")
    except api_client.ApiError as exc:
        if exc.reached and exc.status == 401:
            return False
        raise
    return True


@callback(Output("session", "data", allow_duplicate=True), Output("wall-link", "data"),
          Output("wall-renew-at", "data"), Output("wall-state", "children"), Output("wall-notice", "children"),
          Output("wall-keep", "disabled"),
          Input("wall-keep", "n_intervals"), State("url", "hash"), State("wall-link", "data"),
          State("wall-renew-at", "data"), State("session", "data"), State("lang", "data"),
          prevent_initial_call="initial_duplicate")
@page_callback(needs_session=False)
def keep(_n: int | None, fragment: str | None, link: dict | None, renew_at: float | None, session: dict | None,
         lang: str):
    """Trade the key for a token, keep it valid, and notice a revocation or an API that is away."""
    key = key_of(fragment)
    if key is None:
        return None, None, None, "", notice("wall.no_key", "wall.ask_admin", lang), True
    token = (session or {}).get("token") if ((session or {}).get("user") or {}).get("role") == "display" else None
    try:
        if token and link and renew_at and time.time() < renew_at and _alive(token):
            return dash.no_update, dash.no_update, dash.no_update, state("wall.live", lang, True), None, False
        answer = _exchange(key)
    except api_client.ApiError as exc:
        if exc.reached and exc.status == 401:  # the key is refused: revoked, or never a key
            head = "wall.revoked" if (exc.body or {}).get("detail") == REVOKED else "wall.invalid"
            return None, None, None, "", notice(head, "wall.ask_admin", lang), True
        return dash.no_update, dash.no_update, dash.no_update, state("wall.retrying", lang, False), None, False
    renewed = {"token": answer["access_token"], "user": answer["user"]}
    return (renewed, answer["link"] if answer["link"] != link else dash.no_update,
            time.time() + answer["expires_in"] / 2, state("wall.live", lang, True), None, False)


@callback(Output("wall-stage", "children"), Output("wall-page", "children"), Output("wall-where", "children"),
          Output("wall-rotate", "interval"), Output("wall-rotate", "disabled"),
          Input("wall-rotate", "n_intervals"), Input("wall-link", "data"), State("lang", "data"))
@page_callback(needs_session=False)
def rotate(n: int | None, link: dict | None, lang: str):
    """The link's next page, drawn afresh in the stage, and the rotation's interval (the same value set again
    does not restart the timer)."""
    if not link:
        return [], "", "", dash.no_update, True
    pages = [p for p in wall_pages(api_client.routes()) if p["path"] in link["pages"]]
    pages.sort(key=lambda p: link["pages"].index(p["path"]))
    where = f"{link['label']} · {link.get('scope_name') or link['scope_code']}"
    if not pages:
        return notice("wall.no_pages", "wall.ask_admin", lang), "", where, dash.no_update, True
    turn = (n or 0) % len(pages)
    page = pages[turn]
    drawn = page["layout"]() if callable(page["layout"]) else page["layout"]
    position = f"{t(page['nav'], lang)} · {turn + 1}/{len(pages)}"
    return (html.Div(drawn, className="wall-frame", id="wall-frame", **{"data-page": page["path"]}), position,
            where, link["rotate_s"] * 1000, False)


@callback(Output("wall-title", "children"), Input("lang", "data"))
@page_callback(needs_session=False)
def words(lang: str):
    """The wall's title in the chosen language."""
    return t("title", lang)
