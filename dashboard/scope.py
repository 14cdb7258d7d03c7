"""Which scope a page shows: read from the URL query (?level=&code=), defaulting to the user's own."""

from urllib.parse import parse_qs, urlencode

from dash import dcc, html

LEVELS = ("province", "city", "county", "school", "community")
SCOPE_ROUTE = "/api/v1/scopes/{level}/{code}"  # the API's route of a scope, as its OpenAPI document names it


def query_values(search: str | None) -> dict[str, str]:
    """The URL query as single values."""
    return {k: v[0] for k, v in parse_qs((search or "").lstrip("?")).items()}


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
    """The query string that keeps a scope (and extra parameters) in the URL."""
    return "?" + urlencode({"level": level, "code": code, **extra})


def href(path: str, level: str, code: str, **extra: str) -> str:
    """A cockpit URL of a page at a scope."""
    return path + scope_search(level, code, **extra)


def carry(path: str, search: str | None) -> str:
    """A page URL that keeps the current scope of the URL (if any)."""
    query = query_values(search)
    if query.get("level") and query.get("code"):
        return href(path, query["level"], query["code"])
    return path


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
