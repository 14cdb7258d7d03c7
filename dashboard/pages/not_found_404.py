"""页面不存在 Page not found: what Dash shows for a path no page has, in the chosen language, with a way back.

Dash uses the page registered from a module named `not_found_404` for every unknown path.
"""

import dash
from dash import Input, Output, callback, dcc, html

from dashboard.i18n import DEFAULT_LANG, t
from dashboard.page import page_callback
from dashboard.scope import LEVELS, href

dash.register_page(__name__, path="/404", title="页面不存在 · 教育信息化数字驾驶舱")


def back_href(level: str | None = None, code: str | None = None) -> str:
    """The overview, at the scope the unknown URL carried if it carried one."""
    return href("/", level, code) if level in LEVELS and code else "/"


def layout(level: str | None = None, code: str | None = None, **_query) -> html.Div:
    """The words (in Chinese until the language callback has run) and the link back to the overview."""
    return html.Div(className="page not-found", children=[
        html.Div(className="panel not-found-box", role="alert", children=[
            html.H2(t("notfound.title", DEFAULT_LANG), id="not-found-title"),
            html.P(t("notfound.text", DEFAULT_LANG), id="not-found-text", className="muted"),
            dcc.Link(t("back.overview", DEFAULT_LANG), href=back_href(level, code), id="not-found-back",
                     className="button"),
        ]),
    ])


@callback(Output("not-found-title", "children"), Output("not-found-text", "children"),
          Output("not-found-back", "children"), Input("lang", "data"))
@page_callback(needs_session=False)
def words(lang: str):
    """The page's words in the chosen language."""
    return t("notfound.title", lang), t("notfound.text", lang), t("back.overview", lang)
