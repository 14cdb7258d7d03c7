"""管理 · 变更记录 Administration, history: the registry's moves, retirements and returns, joins and leaves,
disables and enables within the admin's scope, newest first, by kind of thing and key (a school's, device's,
community's or user's own history is one link away from its row in the other sections)."""

import json

import dash
from dash import Input, Output, State, callback, dcc, html

from dashboard import api_client
from dashboard.components import panel, table
from dashboard.i18n import fmt_time, t
from dashboard.page import page_callback
from dashboard.pages.admin_common import (
    ADMIN_API,
    LIST_LIMIT,
    body,
    frame,
    register_gate,
    register_words,
    total_note,
    word,
)

dash.register_page(__name__, path="/admin/history", title="管理 · 变更记录 · 教育信息化数字驾驶舱", order=26)

P = "admin-history"
ENTITIES = ("school", "device", "community", "community_member", "user")


def layout(entity: str | None = None, key: str | None = None, **_query) -> html.Div:
    """The filters (kind of thing, key; from the URL when a row's history link opened the page) and the list."""
    return frame(P, [
        panel(html.Div([
            html.Div(className="toolbar", children=[
                dcc.RadioItems(id=f"{P}-entity", value=entity if entity in ENTITIES else "", inline=True,
                               className="admin-choice", options=[{"label": e, "value": e} for e in ("", *ENTITIES)]),
                dcc.Input(id=f"{P}-key", type="search", debounce=True, value=key or "", maxLength=100,
                          className="search")]),
            html.Div(id=f"{P}-list", className="scroll"),
            html.Div(id=f"{P}-note")]), title=html.Span(id=f"{P}-title")),
    ])


register_gate(P, "history", f"{ADMIN_API}/history")
register_words({
    (f"{P}-title", "children"): "admin.history.title", (f"{P}-key", "placeholder"): "admin.history.key",
    (f"{P}-entity", "options"): [("", "admin.history.all"), *[(e, f"admin.entity.{e}") for e in ENTITIES]]})


def _value(value: object) -> str:
    """A value of the history's JSON as it was stored: text as it is, anything else as JSON (true, null…)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def change_text(row: dict) -> str:
    """What changed: before → after of the fields that differ; for a record created (or one with nothing
    before or after), its fields as they were stored."""
    before, after = row.get("before") or {}, row.get("after") or {}
    if not before or not after:
        return "; ".join(f"{k}: {_value(v)}" for k, v in (after or before).items()) or "—"
    keys = [k for k in dict.fromkeys([*before, *after]) if before.get(k) != after.get(k)]
    return "; ".join(f"{k}: {_value(before.get(k, '—'))} → {_value(after.get(k, '—'))}" for k in keys) or "—"


def history_rows(rows: list[dict], lang: str) -> list[list]:
    """When, what, which, the change, by whom and through what."""
    return [[fmt_time(r.get("at"), seconds=True), word(f"admin.entity.{r.get('entity')}", lang), r.get("key", ""),
             word(f"admin.change.{r.get('change')}", lang), change_text(r), r.get("changed_by", ""),
             word(f"admin.source.{r.get('source')}", lang)] for r in rows]


@callback(Output(f"{P}-list", "children"), Output(f"{P}-note", "children"),
          Input(f"{P}-entity", "value"), Input(f"{P}-key", "value"), Input("lang", "data"),
          State("session", "data"))
@page_callback(f"{P}-list-error", lambda box, **_: (box, None), back=False)
def refresh(entity: str | None, key: str | None, lang: str, session: dict):
    """The history rows within the admin's scope, newest first."""
    answer = api_client.get(session["token"], f"{ADMIN_API}/history", **body({"entity": entity, "key": key}),
                            limit=LIST_LIMIT)
    items = answer["items"] if isinstance(answer, dict) else answer
    headers = [t("time", lang), t("type", lang), t("admin.history.key_header", lang), t("admin.history.change", lang),
               t("detail", lang), t("admin.history.by", lang), t("admin.history.source", lang)]
    note = total_note(answer, lang, f"{P}-total") if isinstance(answer, dict) else None
    return table(headers, history_rows(items, lang), lang, f"{P}-table"), note
