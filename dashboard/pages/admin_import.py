"""管理 · 导入 Administration, import: the bureau's workbook of schools, devices, communities… read by the API.

Download the template, fill it in, upload it: the API first tries it without writing anything (a dry run)
and reports every row it would refuse (sheet, row, column and why, in the chosen language). Only a clean
dry run can be applied; applying sends the same file again for real and shows what changed and any
passwords the API generated for new accounts (shown once, kept nowhere).
"""

import base64
import binascii

import dash
from dash import Input, Output, State, callback, dcc, html

from dashboard import api_client
from dashboard.components import panel, table
from dashboard.i18n import fmt_text, t
from dashboard.page import page_callback
from dashboard.pages.admin_common import (
    ADMIN_API,
    done,
    frame,
    refusal,
    register_gate,
    register_words,
    secret,
    word,
)

dash.register_page(__name__, path="/admin/import", title="管理 · 导入 · 教育信息化数字驾驶舱", order=25)

P = "admin-import"
IMPORT = f"{ADMIN_API}/import"


def layout(**_query) -> html.Div:
    """The template, the upload, the dry run's report with the apply button, and what applying changed."""
    return frame(P, [
        dcc.Download(id=f"{P}-download"),
        dcc.Store(id=f"{P}-file"),  # the workbook of the last dry run: applying sends it again
        dcc.Store(id=f"{P}-report"),  # the dry run's answer (or refusal), drawn in the chosen language
        dcc.Store(id=f"{P}-applied"),  # what applying changed, and the passwords generated (shown once)
        panel(html.Div(className="admin-form", children=[
            html.P(id=f"{P}-help", className="muted"),
            html.Div(className="form-row", children=[
                html.Button(id=f"{P}-template", n_clicks=0, className="export"),
                dcc.Upload(id=f"{P}-upload", max_size=-1, multiple=False, accept=".xlsx,.csv",
                           className="admin-upload", children=html.Span(id=f"{P}-upload-text"))]),
            html.Div(id=f"{P}-template-result")]), title=html.Span(id=f"{P}-title")),
        panel(html.Div([
            html.Div(id=f"{P}-summary"),
            html.Div(id=f"{P}-errors", className="scroll table-440"),
            html.Div(id=f"{P}-warnings", className="scroll table-300"),
            html.Div(className="form-row", children=[html.Button(id=f"{P}-apply", n_clicks=0, disabled=True)]),
            html.Div(id=f"{P}-result")]), title=html.Span(id=f"{P}-report-title")),
    ])


register_gate(P, "import", f"{ADMIN_API}/users")
register_words({
    (f"{P}-title", "children"): "admin.import.title", (f"{P}-help", "children"): "admin.import.help",
    (f"{P}-template", "children"): "admin.import.template", (f"{P}-upload-text", "children"): "admin.import.upload",
    (f"{P}-report-title", "children"): "admin.import.report", (f"{P}-apply", "children"): "admin.import.apply"})


def decode_upload(contents: str | None) -> bytes:
    """The bytes of a dcc.Upload's data URL (data:<type>;base64,<data>); ValueError when it is not one."""
    if not contents or "," not in contents:
        raise ValueError("no file")
    try:
        return base64.b64decode(contents.split(",", 1)[1], validate=True)
    except binascii.Error as exc:
        raise ValueError("not base64") from exc


def report_errors(answer: dict | None) -> list[dict]:
    """The rows a dry run refused: from its answer, or from the body of a refusal (4xx) that lists them."""
    errors = (answer or {}).get("errors") or []
    return [e for e in errors if isinstance(e, dict)]


def error_rows(errors: list[dict], lang: str) -> list[list]:
    """Sheet, row, column and the reason in the chosen language (the other one when only it is given)."""
    other = "en" if lang == "zh" else "zh"
    return [[fmt_text(e.get("sheet")), fmt_text(e.get("row")), fmt_text(e.get("column")),
             e.get(f"reason_{lang}") or e.get(f"reason_{other}") or e.get("message") or e.get("msg") or "—"]
            for e in errors]


def change_rows(changes: dict | None, lang: str) -> tuple[list[str], list[list]]:
    """What the import changes (or would change), one row per kind of thing, one column per kind of change."""
    changes = changes or {}
    kinds: list[str] = []
    for counts in changes.values():
        for k in counts if isinstance(counts, dict) else ():
            if k not in kinds:
                kinds.append(k)
    headers = [t("type", lang)] + [word(f"admin.change.{k}", lang) for k in kinds]
    rows = [[word(f"admin.entity.{entity}", lang)] + [counts.get(k, 0) for k in kinds]
            for entity, counts in changes.items() if isinstance(counts, dict)]
    return headers, rows


def clean(answer: dict | None) -> bool:
    """True when the dry run found nothing to refuse: only then may the file be applied."""
    return bool(answer) and answer.get("ok") is True and not report_errors(answer) and not answer.get("refused")


@callback(Output(f"{P}-download", "data"), Output(f"{P}-template-result", "children"),
          Input(f"{P}-template", "n_clicks"), State("lang", "data"), State("session", "data"),
          prevent_initial_call=True)
@page_callback()
def template(clicks, lang, session):
    """The import template as the API makes it."""
    if not clicks:
        raise dash.exceptions.PreventUpdate
    try:
        content, name = api_client.download(session["token"], f"{IMPORT}/template")
    except api_client.ApiError as exc:
        return dash.no_update, refusal(exc, lang, f"{P}-template-error")
    return dcc.send_bytes(content, "import-template.xlsx" if name == "export" else name), None


@callback(Output(f"{P}-report", "data"), Output(f"{P}-file", "data"), Output(f"{P}-applied", "data"),
          Input(f"{P}-upload", "contents"), State(f"{P}-upload", "filename"), State("session", "data"),
          prevent_initial_call=True)
@page_callback()
def dry_run(contents, filename, session):
    """Send the uploaded workbook for a dry run; keep the answer (or the refusal) and the file for applying."""
    if not contents:
        raise dash.exceptions.PreventUpdate
    name = filename or "import.xlsx"
    try:
        answer = api_client.upload(session["token"], IMPORT, name, decode_upload(contents), dry_run="true")
    except ValueError:
        return {"refused": "unreadable", "filename": name}, None, None
    except api_client.ApiError as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        return {"refused": str(exc), "status": exc.status, "errors": report_errors(body), "filename": name}, None, None
    return {**answer, "filename": name}, {"name": name, "contents": contents}, None


def issues_table(issues: list[dict], lang: str, table_id: str, title: str | None = None) -> html.Div | None:
    """Rows of a report (errors or warnings) as a table under an optional title; nothing when there are none."""
    if not issues:
        return None
    headers = [t("admin.import.sheet", lang), t("admin.import.row", lang), t("admin.import.column", lang),
               t("admin.import.reason", lang)]
    return html.Div([html.H4(title) if title else None, table(headers, error_rows(issues, lang), lang, table_id)])


@callback(Output(f"{P}-summary", "children"), Output(f"{P}-errors", "children"), Output(f"{P}-warnings", "children"),
          Output(f"{P}-apply", "disabled"),
          Input(f"{P}-report", "data"), Input(f"{P}-file", "data"), Input("lang", "data"))
@page_callback(needs_session=False)
def show_report(report: dict | None, file: dict | None, lang: str):
    """The dry run's verdict, what it would change, the rows it refused and its warnings; apply only when clean."""
    if not report:
        return html.Div(t("admin.import.none", lang), className="muted"), None, None, True
    errors = report_errors(report)
    refused_rows = issues_table(errors, lang, f"{P}-error-table")
    warnings = issues_table([w for w in report.get("warnings") or [] if isinstance(w, dict)], lang,
                            f"{P}-warning-table", t("admin.import.warnings", lang))
    if report.get("refused"):
        exc = api_client.ApiError(report.get("status") or 400, report["refused"])
        verdict = (refusal(exc, lang, f"{P}-refused") if report["refused"] != "unreadable"
                   else html.Div(t("admin.import.unreadable", lang), className="error", id=f"{P}-refused"))
        return verdict, refused_rows, None, True
    headers_c, rows_c = change_rows(report.get("changes"), lang)
    name = report.get("filename", "")
    if clean(report) and not file:  # applied (or refused) since: the file is gone, its dry run is history
        verdict = html.Div(t("admin.import.used", lang).format(file=name), className="muted", id=f"{P}-verdict")
    elif clean(report):
        verdict = done(t("admin.import.clean", lang).format(file=name), f"{P}-verdict")
    else:
        count = max(report.get("error_count") or 0, len(errors))
        verdict = html.Div(role="alert", className="error", id=f"{P}-verdict", children=[
            t("admin.import.dirty", lang).format(n=count, file=name),
            *([" " + t("admin.import.more_errors", lang).format(shown=len(errors))] if count > len(errors) else [])])
    summary = [verdict, table(headers_c, rows_c, lang, f"{P}-changes") if rows_c else None]
    return summary, refused_rows, warnings, not (clean(report) and file)


@callback(Output(f"{P}-applied", "data", allow_duplicate=True), Output(f"{P}-file", "data", allow_duplicate=True),
          Input(f"{P}-apply", "n_clicks"), State(f"{P}-file", "data"), State(f"{P}-report", "data"),
          State("session", "data"), prevent_initial_call=True)
@page_callback()
def apply(clicks, file, report, session):
    """Apply the workbook whose dry run was clean (sent again: the API checks it again as it writes). The
    file is forgotten either way, so a second click cannot apply it twice."""
    if not clicks or not file or not clean(report):
        raise dash.exceptions.PreventUpdate
    try:
        answer = api_client.upload(session["token"], IMPORT, file["name"], decode_upload(file["contents"]),
                                   dry_run="false")
    except api_client.ApiError as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        return {"refused": str(exc), "status": exc.status, "errors": report_errors(body)}, None
    return answer, None


@callback(Output(f"{P}-result", "children"), Input(f"{P}-applied", "data"), Input("lang", "data"))
@page_callback(needs_session=False)
def show_applied(applied: dict | None, lang: str):
    """What applying changed, and the passwords generated for new accounts (shown once); or why it was refused."""
    if not applied:
        return None
    errors = report_errors(applied)
    if applied.get("refused") or not applied.get("ok", True) or errors:
        exc = api_client.ApiError(applied.get("status") or 409, applied.get("refused") or
                                  "; ".join(" ".join(map(str, r)) for r in error_rows(errors, lang)))
        return refusal(exc, lang, f"{P}-apply-error")
    headers, rows = change_rows(applied.get("changes"), lang)
    out = [done(t("admin.import.applied", lang), f"{P}-applied-note"), table(headers, rows, lang, f"{P}-applied-table")]
    passwords = applied.get("passwords") or []
    if passwords:
        out.append(secret(t("admin.import.passwords", lang),
                          [(p.get("username", ""), p.get("password", "")) for p in passwords], lang, f"{P}-secret"))
    return out
