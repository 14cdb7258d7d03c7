"""Downloads of any table: the API's own CSV/XLSX export, or its JSON made into a file here."""

import io
from collections.abc import Callable
from urllib.parse import parse_qsl

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc
from openpyxl import Workbook

from dashboard import api_client
from dashboard.equity_figures import too_few_schools
from dashboard.page import page_callback


def _equity_rows(data: dict) -> list[dict]:
    """One row per county group; `judged` is false (and `passes` empty) for a group over too few schools."""
    rows = []
    for c in data["counties"]:
        for g in c["groups"]:
            judged = not too_few_schools(g, data)
            rows.append({"county_code": c["code"], "county": c["name"], "group": g["group"], "schools": g["schools"],
                         "students": g["students"], "composite_cv": g["composite_cv"], "bar": g["bar"],
                         "judged": judged, "passes": g["passes"] if judged else None,
                         **{f"cv_{i['indicator']}": i["cv"] for i in g["indicators"]}})
    return rows


def _targets_rows(data: list[dict]) -> list[dict]:
    """One row per target and child, in league order (worst first), with the target's time left."""
    return [{"figure": p["target"]["figure"], "comparator": p["target"]["comparator"],
             "target": p["target"]["value"], "deadline": p["target"]["deadline"], "days_left": p.get("days_left"),
             "rank": c["rank"], "level": c["level"], "code": c["code"], "name": c["name"], "value": c["value"],
             "status": (c.get("target") or {}).get("status"), "gap": (c.get("target") or {}).get("gap")}
            for p in data for c in p["children"]]


def _lesson_children_rows(data: dict) -> list[dict]:
    return [{"level": c["level"], "code": c["code"], "name": c["name"], **f}
            for c in data["children"] for f in c["figures"]]


def _live_rows(data: list[dict]) -> list[dict]:
    return [{k: v for k, v in s.items() if k != "receivers"} | {
        "receivers": len(s["receivers"]), "receivers_joined": sum(r["joined"] for r in s["receivers"])} for s in data]


def _plain_rows(data: list[dict]) -> list[dict]:
    return [{k: (str(v) if isinstance(v, dict | list) else v) for k, v in row.items()} for row in data]


# Tables whose API route has no format=csv|xlsx: the JSON is fetched and written here.
LOCAL: dict[str, Callable[[dict | list], list[dict]]] = {
    "equity": _equity_rows, "targets": _targets_rows, "events": _plain_rows, "commands": _plain_rows,
    "lesson_children": _lesson_children_rows, "live": _live_rows,
}


def rows_file(rows: list[dict], fmt: str) -> bytes:
    """Rows as CSV (UTF-8 with BOM, for Excel) or XLSX bytes; columns in first-row order."""
    columns = list(rows[0]) if rows else []
    if fmt == "csv":
        import csv

        buf = io.StringIO()
        buf.write("\ufeff")
        writer = csv.DictWriter(buf, columns)
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue().encode()
    book = Workbook(write_only=True)
    sheet = book.create_sheet("export")
    sheet.append(columns)
    for row in rows:
        sheet.append([row.get(c) for c in columns])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def fetch_export(token: str, table: str, path: str, query: str, fmt: str) -> tuple[bytes, str]:
    """The file for one export button: from the API's export, or from its JSON for LOCAL tables."""
    params: dict[str, str | list[str]] = {}
    for key, value in parse_qsl(query):  # a repeated key (state=firing&state=acknowledged) becomes a list
        if key not in params:
            params[key] = value
        elif isinstance(params[key], list):
            params[key].append(value)
        else:
            params[key] = [params[key], value]
    if table in LOCAL:
        rows = LOCAL[table](api_client.get(token, path, **params))
        return rows_file(rows, fmt), f"{table}.{fmt}"
    return api_client.download(token, path, **params, format=fmt)


@callback(Output("app-download", "data"), Output("app-export-error", "children"),
          Input({"type": "export", "table": ALL, "path": ALL, "query": ALL, "fmt": ALL}, "n_clicks"),
          State("session", "data"), State("lang", "data"), prevent_initial_call=True)
@page_callback("app-export-error-message", lambda box, **_: (dash.no_update, box), back=False)
def export(_clicks: list, session: dict, lang: str):
    """Download the table whose button was clicked, with the user's token; show the API's error if any."""
    button = ctx.triggered_id
    if not button or not ctx.triggered[0]["value"]:
        raise dash.exceptions.PreventUpdate
    content, name = fetch_export(session["token"], button["table"], button["path"], button["query"], button["fmt"])
    return dcc.send_bytes(content, name), None
