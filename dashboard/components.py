"""Pieces every page is built from: tiles, panels, tables, error boxes, export buttons."""

from urllib.parse import urlencode

import dash
from dash import dcc, html

from dashboard.api_client import ApiError
from dashboard.i18n import NO_DATA, fmt_number, fmt_value, missing, t
from dashboard.scope import href

GRAPH_CONFIG = {"displayModeBar": False, "responsive": True}


def tile(label: str, value: str, tile_id: str, status: str | None = None, note: str | None = None,
         compare: str | None = None, link=None) -> html.Div:
    """A headline number with its label; `status` (met/behind/missed) colours its edge; `compare` (see
    `change_note`) says how the previous period compares, under the value (id `<tile_id>-previous`);
    `link` (such as `which_link`) sits at the right end of the label's line."""
    head = label if link is None else [label, html.Span(link, style={"float": "right"})]
    children = [html.Div(head, className="label"), html.Div(value, className="value", id=tile_id)]
    if note:
        children.append(html.Div(note, className="note"))
    if compare:
        children.append(html.Div(compare, className="note compare", id=f"{tile_id}-previous"))
    return html.Div(className=f"tile tile-{status}" if status else "tile", children=children)


def change_note(figure: dict | None, unit: str, lang: str) -> str:
    """The previous period's value of a figure and the change since, e.g. 上期 92.1% ↑1.3 (a rate's change in
    percentage points); 上期 — when the API has no previous value."""
    figure = figure or {}
    previous, change = figure.get("previous"), figure.get("change")
    if missing(previous):
        return f"{t('previous', lang)} {NO_DATA}"
    note = f"{t('previous', lang)} {fmt_value(previous, unit, lang)}"
    if missing(change):
        return note
    arrow = "↑" if change > 0 else "↓" if change < 0 else "→"
    size = fmt_number(abs(change) * 100) if unit == "ratio" else fmt_value(abs(change), unit, lang)
    return f"{note} {arrow}{size}"


def period_label(period: dict | None, lang: str) -> str:
    """The period's name (今天, 上月 …), or its days for a from/to range."""
    label = (period or {}).get("label")
    if label and label != "custom":
        return t(f"period.{label}", lang)
    first, last = (period or {}).get("from"), (period or {}).get("to")
    return f"{first}–{last}" if first and last else t("period.custom", lang)


ERROR_KEYS = {400: "error.400", 401: "error.401", 403: "error.403", 404: "error.404", 409: "error.409",
              422: "error.422", 429: "error.429"}
SHOW_DETAIL = {400, 409, 422}  # the API's own words say what to change; otherwise they are for operators


def error_message(exc: ApiError | Exception, lang: str) -> str:
    """What went wrong in the chosen language, with the HTTP status, e.g. 没有权限查看或执行此操作(403)."""
    status = getattr(exc, "status", None)
    if not isinstance(exc, ApiError) or status is None:
        return t("error.internal", lang)
    key = ERROR_KEYS.get(status) or ("error.5xx" if status >= 500 else "error.api")
    return f"{t(key, lang)}({status})" if lang == "zh" else f"{t(key, lang)} ({status})"


def error_box(exc: ApiError | Exception, box_id: str, lang: str, back: bool = True) -> html.Div:
    """What went wrong in words (the API's detail in the tooltip), where the page's figures would be,
    with a way back: the overview, or the login page when the login has expired."""
    if not getattr(exc, "reached", True):  # the live refresh brings the page back by itself
        return html.Div(className="error", id=box_id, role="alert", title=str(exc),
                        children=html.B(t("error.unreachable", lang)))
    children = [html.B(error_message(exc, lang))]
    if isinstance(exc, ApiError) and exc.status in SHOW_DETAIL:
        children.append(html.Span(" " + str(exc), className="error-detail"))
    if back:
        target, word = ("/login", "login") if getattr(exc, "status", None) == 401 else ("/", "back.overview")
        children.append(dcc.Link(t(word, lang), href=target, className="error-back", id=f"{box_id}-back"))
    return html.Div(className="error", id=box_id, role="alert", title=str(exc), children=children)


def empty(lang: str) -> html.Div:
    """What an empty list or chart says."""
    return html.Div(t("empty", lang), className="empty")


def light(status: str | None, lang: str, label: str | None = None, title: str | None = None) -> html.Span:
    """A traffic light for a target status (met / behind / missed / no data), optionally with its own label
    and a tooltip saying why."""
    status = status or "no_data"
    kwargs = {"title": title} if title else {}
    return html.Span(label or t(f"status.{status}", lang), className=f"light light-{status}", **kwargs)


def panel_head(title=None, tools=None) -> html.Div:
    """A panel's title row: the title left, tools such as export buttons right."""
    # `is None`, not falsiness: a Dash component without children is falsy but still belongs on the page
    return html.Div(className="panel-head", children=[
        html.H3("" if title is None else title, className="panel-title"),
        html.Div([] if tools is None else tools, className="panel-tools")])


def panel(children, title=None, tools=None, class_name: str = "") -> html.Section:
    """A framed panel with an optional title row (see panel_head)."""
    head = [] if title is None and tools is None else [panel_head(title, tools)]
    return html.Section(className=f"panel {class_name}".strip(), children=head + [children])


def graph(graph_id: str, height: int = 320) -> dcc.Graph:
    """A figure slot of a fixed height that keeps the user's zoom across refreshes (figures set uirevision)."""
    return dcc.Graph(id=graph_id, config=GRAPH_CONFIG, style={"height": f"{height}px"})


def table(headers: list[str], rows: list[list], lang: str, table_id: str | None = None) -> html.Table:
    """A table with a header row; one row saying t('empty') when there are no rows."""
    body = [html.Tr([html.Td(c) for c in row]) for row in rows] or [
        html.Tr(html.Td(t("empty", lang), colSpan=len(headers), className="empty"))]
    kwargs = {"id": table_id} if table_id else {}
    return html.Table(className="data-table", children=[
        html.Thead(html.Tr([html.Th(h) for h in headers])), html.Tbody(body)], **kwargs)


def export_buttons(table_name: str, path: str, lang: str, **params) -> list[html.Button]:
    """A CSV and an XLSX button that download the table through the API (see dashboard.export)."""
    query = urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)  # a list: the key repeated
    return [html.Button(t(f"export.{fmt}", lang), className="export", n_clicks=0,
                        id={"type": "export", "table": table_name, "path": path, "query": query, "fmt": fmt})
            for fmt in ("csv", "xlsx")]


def which_link(level: str, code: str, figure: str, lang: str, link_id: str) -> dcc.Link:
    """"Which schools?": the page listing the schools behind a scope's figure, for the URL's period."""
    return dcc.Link(t("which.schools", lang), href=href("/schools", level, code, figure=figure), id=link_id,
                    className="which-link", style={"color": "#7fd3ff", "fontSize": "14px", "whiteSpace": "nowrap"})


def turned_page(prefix: str, page: int) -> int:
    """The page a list shows after a click on its `{prefix}-next` / `{prefix}-prev` button, or its first
    page after any other change (a filter, the order, the URL)."""
    trigger = dash.ctx.triggered_id
    if trigger == f"{prefix}-next":
        return page + 1
    if trigger == f"{prefix}-prev":
        return max(1, page - 1)
    return 1
