"""智能巡课 Lesson inspection: the wall of classrooms in session, one enlarged, and the inspection record.

The wall shows the latest still of every classroom in session in the scope with its health badge,
filtered by kind of lesson, subject, school and health, and refreshes live: only the tiles whose
still or health changed are sent again, and the pictures come through signed links the browser
caches (dashboard/inspection_figures.py). A click enlarges a classroom: its lesson, its devices,
each camera's recent stills, and the rubric to record what the inspector saw; the API decides
who may record (its refusal is shown as it is).
"""

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc, html

from dashboard import api_client
from dashboard import inspection_figures as fig
from dashboard.components import error_message, export_buttons, panel, table, tile
from dashboard.i18n import fmt_count, fmt_rate, fmt_time, t
from dashboard.page import page_callback
from dashboard.scope import SCOPE_ROUTE, api_path, breadcrumb, period_params, requested_scope
from dashboard.settings import dashboard_settings

dash.register_page(__name__, path="/inspection", title="智能巡课 · 教育信息化数字驾驶舱", order=6.5,
                   nav="nav.inspection", api_route=f"{SCOPE_ROUTE}/inspection/wall")

RECORD_ROWS = 50


def _filter(filter_id: str) -> dcc.Dropdown:
    return dcc.Dropdown(id=f"inspection-{filter_id}", clearable=True, searchable=filter_id == "school",
                        style={"minWidth": "190px"})


def layout(**_query) -> html.Div:
    """Tiles, filters, the wall, the enlarged classroom (hidden until a tile is clicked), figures and records."""
    return html.Div(className="page inspection", children=[
        dcc.Interval(id="inspection-refresh", interval=dashboard_settings().refresh_ms),
        dcc.Store(id="inspection-shown", data=None),  # what the grid shows: see inspection_figures.refresh
        dcc.Store(id="inspection-open", data=None),  # the device enlarged
        dcc.Store(id="inspection-view", data=None),  # the enlarged classroom as the API gave it
        dcc.Store(id="inspection-still", data=None),  # the still looked at: {snapshot_id, camera}
        dcc.Store(id="inspection-changed", data=0),  # bumped after a record, so figures and the view re-read
        html.Div(className="page-head", children=[
            html.Div(id="inspection-breadcrumb", className="breadcrumb"),
            html.Span(id="inspection-as-of", className="muted")]),
        html.Div(id="inspection-error"),
        html.Div(id="inspection-tiles", className="tiles"),
        html.Div(className="toolbar", children=[
            _filter("kind"), _filter("subject"), _filter("school"), _filter("health"),
            html.Span(id="inspection-count", className="muted")]),
        html.Div(id="inspection-detail", hidden=True, children=panel(
            html.Div(className="insp-detail-body", children=[
                html.Div(className="insp-detail-left", children=[
                    html.Img(id="inspection-big", className="insp-big"),
                    html.Div(id="inspection-caption", className="muted"),
                    html.Div(id="inspection-strip", className="insp-strip")]),
                html.Div(className="insp-detail-right", children=[
                    html.Div(id="inspection-lesson"),
                    html.Div(id="inspection-devices"),
                    html.H4(id="inspection-form-title", className="insp-form-title"),
                    dcc.Checklist(id="inspection-rubric", className="insp-rubric", inline=True),
                    dcc.Textarea(id="inspection-note", maxLength=500, className="insp-note"),
                    html.Div(className="form-row", children=[
                        html.Button(id="inspection-save", n_clicks=0),
                        html.Span(id="inspection-message", role="status", className="muted")]),
                    html.Div(id="inspection-history", className="scroll table-300")])]),
            title=html.Span(id="inspection-detail-title"),
            tools=[html.Button(id="inspection-close", n_clicks=0, className="secondary small")],
            class_name="insp-detail")),
        panel(html.Div(id="inspection-grid", className="insp-grid"), title=html.Span(id="inspection-wall-title")),
        html.Div(className="grid-2", children=[
            panel(html.Div(id="inspection-kinds", className="scroll"), title=html.Span(id="inspection-kinds-title")),
            panel(html.Div(id="inspection-records", className="scroll table-300"),
                  title=html.Span(id="inspection-records-title"), tools=[html.Div(id="inspection-records-tools")])]),
    ])


@callback(Output("inspection-kind", "options"), Output("inspection-kind", "placeholder"),
          Output("inspection-subject", "placeholder"), Output("inspection-school", "placeholder"),
          Output("inspection-health", "options"), Output("inspection-health", "placeholder"),
          Output("inspection-wall-title", "children"), Output("inspection-kinds-title", "children"),
          Output("inspection-records-title", "children"), Output("inspection-form-title", "children"),
          Output("inspection-note", "placeholder"), Output("inspection-save", "children"),
          Output("inspection-close", "children"), Input("lang", "data"))
@page_callback(needs_session=False)
def words(lang: str):
    """Every fixed word of the page in the chosen language."""
    return (fig.kind_options(lang), t("inspection.all_kinds", lang), t("inspection.all_subjects", lang),
            t("inspection.all_schools", lang), fig.health_options(lang), t("inspection.all_health", lang),
            t("inspection.wall", lang), t("inspection.by_kind", lang), t("inspection.records", lang),
            t("inspection.form", lang), t("inspection.note", lang), t("inspection.save", lang),
            t("inspection.close", lang))


@callback(Output("inspection-breadcrumb", "children"), Input("url", "search"), Input("lang", "data"),
          State("session", "data"))
@page_callback()
def scope_line(search, lang, session):
    """Where the wall is: the scope's breadcrumb (read when the URL or the language changes, not every tick)."""
    scope = api_client.get(session["token"], api_path(*requested_scope(search, session)))
    return breadcrumb(scope, session["user"], "/inspection", "inspection")


def wall_tiles(wall: dict, figures: dict, lang: str) -> list:
    """In session, fine, faulty, without a picture; inspected today and the share that found a problem."""
    by = wall["by_health"]
    return [tile(t("inspection.in_session", lang), fmt_count(wall["in_session"], lang), "inspection-in-session"),
            tile(t("inspection.ok", lang), fmt_count(by["ok"], lang), "inspection-ok", "met"),
            tile(t("inspection.problem", lang), fmt_count(by["problem"], lang), "inspection-problem",
                 "missed" if by["problem"] else "met"),
            tile(t("inspection.no_picture", lang), fmt_count(by["no_picture"], lang), "inspection-no-picture",
                 "no_data"),
            tile(t("inspection.inspected", lang), fmt_count(figures["classrooms_inspected"], lang),
                 "inspection-inspected"),
            tile(t("inspection.share", lang), fmt_rate(figures["problem_share"]), "inspection-share",
                 note=t("inspection.share.note", lang).format(n=fmt_count(figures["inspections"], lang)))]


@callback(Output("inspection-tiles", "children"), Output("inspection-grid", "children"),
          Output("inspection-shown", "data"), Output("inspection-subject", "options"),
          Output("inspection-school", "options"), Output("inspection-count", "children"),
          Output("inspection-as-of", "children"), Output("inspection-error", "children"),
          Input("inspection-refresh", "n_intervals"), Input("url", "search"), Input("lang", "data"),
          Input("inspection-kind", "value"), Input("inspection-subject", "value"), Input("inspection-school", "value"),
          Input("inspection-health", "value"), Input("inspection-changed", "data"),
          State("inspection-shown", "data"), State("session", "data"))
@page_callback("inspection-error-message",
               lambda box, **_: ([], [], None, [], [], "", "", box))
def refresh(_n, search, lang, kind, subject, school, health, _changed, shown, session):
    """The wall, re-read every tick; only the tiles that changed travel to the browser."""
    token, base = session["token"], api_path(*requested_scope(search, session))
    filters = {k: v for k, v in (("kind", kind), ("subject", subject), ("school", school), ("health", health)) if v}
    wall = api_client.get(token, f"{base}/inspection/wall", **filters)
    figures = api_client.get(token, f"{base}/inspections/figures", period="today")
    grid, now = fig.refresh(wall["classrooms"], lang, shown, (wall["subjects"], wall["schools"]))
    count = t("inspection.shown", lang).format(shown=fmt_count(len(wall["classrooms"]), lang),
                                               total=fmt_count(wall["in_session"], lang))
    fresh = fig.choices_changed(shown, now)  # the filters' options travel only when they change
    return (wall_tiles(wall, figures, lang), dash.no_update if grid is None else grid, now,
            [{"label": s, "value": s} for s in wall["subjects"]] if fresh else dash.no_update,
            [{"label": s["name"], "value": s["code"]} for s in wall["schools"]] if fresh else dash.no_update, count,
            f"{t('as_of', lang)} {fmt_time(wall['as_of'], seconds=True)}", None)


@callback(Output("inspection-open", "data"), Input({"type": "inspection-tile", "device": ALL}, "n_clicks"),
          Input("inspection-close", "n_clicks"), prevent_initial_call=True)
def open_classroom(_tiles, _close):
    """A click on a tile enlarges its classroom; Close closes it."""
    clicked = [ctx.triggered_prop_ids[x["prop_id"]] for x in ctx.triggered if x["value"]]
    if not clicked:  # the grid was drawn again, nobody clicked
        raise dash.exceptions.PreventUpdate
    return None if clicked[-1] == "inspection-close" else clicked[-1]["device"]


@callback(Output("inspection-detail", "hidden"), Output("inspection-detail-title", "children"),
          Output("inspection-view", "data"), Output("inspection-lesson", "children"),
          Output("inspection-devices", "children"), Output("inspection-strip", "children"),
          Output("inspection-history", "children"), Output("inspection-rubric", "options"),
          Output("inspection-still", "data"),
          Input("inspection-open", "data"), Input("inspection-changed", "data"), Input("lang", "data"),
          State("session", "data"))
@page_callback("inspection-detail-error",
               lambda box, **_: (False, "", None, box, [], [], [], [], None), back=False)
def show_classroom(device_id, _changed, lang, session):
    """The enlarged classroom, read when it is opened and after a record (not every tick: the form stays still)."""
    if device_id is None:
        return True, "", None, [], [], [], [], [], None
    view = api_client.get(session["token"], f"/api/v1/inspection/classrooms/{device_id}")
    remote = bool(view["lesson"] and view["lesson"]["lesson_id"])
    first = fig.first_still(view)
    still = None
    if first:
        camera = next(c["camera"] for c in view["cameras"] if first in c["stills"])
        still = {"snapshot_id": first["snapshot_id"], "camera": camera}
    history = table([t("time", lang), t("inspection.inspector", lang), t("inspection.result", lang), t("note", lang)],
                    fig.records_rows(view["inspections"], lang, where=False), lang, "inspection-history-list")
    return (False, f"{view['school_name']} {view['room']} · {device_id}", view, fig.lesson_facts(view, lang),
            fig.devices_line(view, lang), fig.strip(view, lang), history, fig.rubric_options(remote, lang), still)


@callback(Output("inspection-still", "data", allow_duplicate=True),
          Input({"type": "inspection-still", "snapshot": ALL, "camera": ALL}, "n_clicks"), prevent_initial_call=True)
def choose_still(_clicks):
    """A click on a small picture shows that still large."""
    clicked = [ctx.triggered_prop_ids[x["prop_id"]] for x in ctx.triggered if x["value"]]
    if not clicked:
        raise dash.exceptions.PreventUpdate
    return {"snapshot_id": clicked[-1]["snapshot"], "camera": clicked[-1]["camera"]}


@callback(Output("inspection-big", "src"), Output("inspection-caption", "children"),
          Input("inspection-still", "data"), Input("lang", "data"), State("inspection-view", "data"))
@page_callback(needs_session=False)
def show_still(still, lang, view):
    """The still looked at, large, with its camera, time and health."""
    if not view or not still:
        return None, t("inspection.no_still", lang)
    found = next((s for c in view["cameras"] for s in c["stills"] if s["snapshot_id"] == still["snapshot_id"]), None)
    return (fig.cockpit_src(found["image"]) if found else None), fig.still_caption(found, still["camera"], lang)


@callback(Output("inspection-rubric", "value"), Output("inspection-note", "value"),
          Input("inspection-open", "data"))
def fresh_form(_device_id):
    """A classroom opened: every box ticked (all fine until the inspector says otherwise), no note."""
    return list(fig.RUBRIC), ""


@callback(Output("inspection-message", "children"), Output("inspection-changed", "data"),
          Input("inspection-save", "n_clicks"), State("inspection-open", "data"), State("inspection-view", "data"),
          State("inspection-still", "data"), State("inspection-rubric", "value"), State("inspection-note", "value"),
          State("inspection-changed", "data"), State("session", "data"), State("lang", "data"),
          prevent_initial_call=True)
@page_callback()
def save(clicks, device_id, view, still, ticked, note, changed, session, lang):
    """Record the inspection through the API; say what was recorded, or why not."""
    if not clicks or not device_id or not view:
        raise dash.exceptions.PreventUpdate
    lesson = view.get("lesson") or {}
    body = fig.inspection_body(lesson.get("lesson_id"), (still or {}).get("snapshot_id"), ticked or [], note)
    try:
        done = api_client.post(session["token"], f"/api/v1/inspection/classrooms/{device_id}/inspections", body)
    except api_client.ApiError as exc:
        return error_message(exc, lang) + " " + str(exc), dash.no_update
    key = "inspection.saved.problem" if done["has_problem"] else "inspection.saved"
    return t(key, lang).format(id=done["id"]), (changed or 0) + 1


@callback(Output("inspection-kinds", "children"), Output("inspection-records", "children"),
          Output("inspection-records-tools", "children"),
          Input("url", "search"), Input("lang", "data"), Input("inspection-changed", "data"),
          State("session", "data"))
@page_callback("inspection-figures-error", lambda box, **_: (box, [], []), back=False)
def records(search, lang, _changed, session):
    """Inspections of the URL's period (today by default): by kind of lesson, and the records to export."""
    token, base = session["token"], api_path(*requested_scope(search, session))
    period = period_params(search) or {"period": "today"}
    figures = api_client.get(token, f"{base}/inspections/figures", **period)
    rows = api_client.get(token, f"{base}/inspections", limit=RECORD_ROWS, **period)
    kinds = table([t("type", lang), t("inspection.classrooms", lang), t("inspection.count", lang),
                   t("inspection.with_problems", lang), t("inspection.share", lang)], fig.kind_rows(figures, lang),
                  lang, "inspection-kind-list")
    listed = table([t("time", lang), t("inspection.inspector", lang), t("school", lang), t("inspection.lesson", lang),
                    t("inspection.result", lang), t("note", lang)], fig.records_rows(rows, lang), lang,
                   "inspection-record-list")
    return kinds, listed, export_buttons("inspections", f"{base}/inspections", lang, limit=5000, **period)
