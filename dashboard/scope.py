"""Which scope a page shows: read from the URL query (?level=&code=), defaulting to the user's own.

Beside the scope the URL keeps the *view*: the period asked about (`period=`, or `from=`/`to=`
for a range of days), whether only its lesson hours count (`hours=lessons`, with a period only)
and the overview's colour-by figure (`figure=`). Every cockpit URL built
while a page callback runs (`href`, `scope_search`, `carry`, the breadcrumb) keeps the view of
the URL the callback was given: `page_callback` sets it with `keeping(search)`. Without any,
the URLs are what they always were (no period: now).
"""

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from urllib.parse import parse_qs, urlencode

import dash
from dash import dcc, html

LEVELS = ("province", "city", "county", "school", "community")
SCOPE_ROUTE = "/api/v1/scopes/{level}/{code}"  # the API's route of a scope, as its OpenAPI document names it


def query_values(search: str | None) -> dict[str, str]:
    """The URL query as single values."""
    return {k: v[0] for k, v in parse_qs((search or "").lstrip("?")).items()}


PERIODS = ("now", "today", "yesterday", "this_week", "last_week", "this_month", "last_month", "this_term")
DEFAULT_PERIOD = "now"
DEFAULT_FIGURE = "online_rate"
VIEW_KEYS = ("period", "from", "to", "hours", "figure")  # what a URL keeps beside the scope, in this order
LESSONS = "lessons"  # hours=lessons: the lesson-hours lens (only beside a period)

_view: ContextVar[dict[str, str]] = ContextVar("cockpit_view", default={})  # noqa: B039 - never mutated


def view_params(search: str | None) -> dict[str, str]:
    """The view the URL asks for, defaults left out: a named period (not now) or a from/to range, and a
    figure other than the online rate."""
    query = query_values(search)
    view: dict[str, str] = {}
    if query.get("from") or query.get("to"):
        view.update({k: query[k] for k in ("from", "to") if query.get(k)})
    elif query.get("period") in PERIODS and query["period"] != DEFAULT_PERIOD:
        view["period"] = query["period"]
    if view and query.get("hours") == LESSONS:  # the lens has no meaning without a period
        view["hours"] = LESSONS
    if query.get("figure") and query["figure"] != DEFAULT_FIGURE:
        view["figure"] = query["figure"]
    return view


def period_params(search: str | None) -> dict[str, str]:
    """The period of the URL as the API's query parameters (`period=` or `from=`/`to=`); none for now."""
    return {k: v for k, v in view_params(search).items() if k in ("period", "from", "to")}


def lens_params(search: str | None) -> dict[str, str]:
    """`hours=lessons` when the URL asks for the lesson hours of its period (for the figures that have the lens)."""
    return {"hours": LESSONS} if view_params(search).get("hours") == LESSONS else {}


def requested_period(search: str | None) -> str:
    """The period the URL names: one of PERIODS, "custom" for a from/to range, else now."""
    params = period_params(search)
    return "custom" if "from" in params or "to" in params else params.get("period", DEFAULT_PERIOD)


def requested_figure(search: str | None) -> str:
    """The overview's colour-by figure the URL names, else the online rate."""
    return query_values(search).get("figure") or DEFAULT_FIGURE


@contextlib.contextmanager
def keeping(search: str | None) -> Iterator[dict[str, str]]:
    """Within the block, every cockpit URL built keeps the view of `search`."""
    token = _view.set(view_params(search))
    try:
        yield _view.get()
    finally:
        _view.reset(token)


def current_view() -> dict[str, str]:
    """The view the URLs built now keep (see `keeping`)."""
    return dict(_view.get())


def with_view(search: str | None, **changes: str | None) -> str:
    """The URL query `search` with some view parameters changed (None or the default: left out); the scope
    and every other parameter stay. Choosing a named period drops a from/to range and the other way round."""
    query = query_values(search)
    if "period" in changes:
        query.pop("from", None), query.pop("to", None)
    if "from" in changes or "to" in changes:
        query.pop("period", None)
    for key, value in changes.items():
        if value is None or (key, value) in (("period", DEFAULT_PERIOD), ("figure", DEFAULT_FIGURE)):
            query.pop(key, None)
        else:
            query[key] = value
    return "?" + urlencode(query) if query else ""


def figure_chosen(key: str | None, search: str | None) -> str:
    """The URL query with the figure chosen in a page's figure menu, so the page stays a link and a
    drill-down keeps it; PreventUpdate when nothing changes."""
    if not key or key == requested_figure(search):
        raise dash.exceptions.PreventUpdate
    return with_view(search, figure=key)


def requested_scope(search: str | None, session: dict) -> tuple[str, str]:
    """The scope in the URL, else the user's own scope."""
    query = query_values(search)
    if query.get("level") in LEVELS and query.get("code"):
        return query["level"], query["code"]
    return session["user"]["scope_level"], session["user"]["scope_code"]


def api_path(level: str, code: str) -> str:
    """The API's path of a scope; the scope's figures, lists and exports hang below it."""
    return SCOPE_ROUTE.format(level=level, code=code)


def scope_search(level: str, code: str, **extra: str) -> str:
    """The query string that keeps a scope, the current view (see `keeping`) and extra parameters in the URL."""
    params = {"level": level, "code": code, **_view.get(), **extra}
    return "?" + urlencode({k: v for k, v in params.items() if v is not None})


def href(path: str, level: str, code: str, **extra: str) -> str:
    """A cockpit URL of a page at a scope."""
    return path + scope_search(level, code, **extra)


def carry(path: str, search: str | None) -> str:
    """A page URL that keeps the current scope and view of the URL (if any)."""
    query, view = query_values(search), view_params(search)
    if query.get("level") and query.get("code"):
        return path + "?" + urlencode({"level": query["level"], "code": query["code"], **view})
    return path + ("?" + urlencode(view) if view else "")


def breadcrumb(scope: dict, user: dict, path: str, prefix: str) -> list:
    """province › city › county › school from the user's own level down; each link keeps the page."""
    own = (user["scope_level"], user["scope_code"])
    trail, reachable = [], False
    for p in scope["parents"]:
        reachable = reachable or (p["level"], p["code"]) == own
        if reachable:
            trail += [dcc.Link(p["name"], href=href(path, p["level"], p["code"]),
                               id=f"{prefix}-crumb-{p['code']}"),
                      html.Span("›", className="sep")]
    return trail + [html.Span(scope["name"], id=f"{prefix}-scope-name", className="current")]
