"""What the administration pages (管理) share: their frame and tabs, the gate, form fields, words, outcomes.

The pages are the registry's administration through `/api/v1/admin`: the API alone decides who
may do what (role admin, bounded by the admin's own scope), so the pages never judge a permission
themselves. Each page opens with a gate that asks the API for the page's own list: a refusal (403
for another role, or "change your password first") hides the forms and says why in the API's own
words; an admin within scope sees the forms. Every refusal of an action is shown beside the form
that asked, with the API's reason, never swallowed; a generated password or a device's MQTT
credentials are shown once, in the answer to the request that made them, and kept nowhere.

This module registers no page of its own (Dash imports the modules of `pages/` that register one);
`register_gate` and `register_words` add each page's callbacks when that page is imported.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

import dash
from dash import Input, Output, callback, dcc, html

from dashboard import api_client
from dashboard.components import error_message
from dashboard.i18n import NO_DATA, t
from dashboard.page import page_callback
from dashboard.strings import STRINGS

log = logging.getLogger(__name__)

ADMIN_API = "/api/v1/admin"
ROLES = ("admin", "manager", "operations", "viewer")
LEVELS = ("province", "city", "county", "school", "community")
TEAM_LEVELS = ("province", "city", "county", "school")
LOCALES = ("urban", "town", "rural")
STAGES = ("primary", "junior", "nine_year", "complete", "senior", "teaching_point")
KINDS = ("board", "recorder", "gateway")
COMMUNITY_KINDS = ("merged", "co_built", "collaborative", "mixed")
MEMBER_ROLES = ("lead", "member")
LIST_LIMIT = 100  # rows a list shows; the note under it says how many there are in all

# The sections, in tab order: (name, path). The users' section is /admin itself, the one the navigation links.
SECTIONS = (("users", "/admin"), ("schools", "/admin/schools"), ("devices", "/admin/devices"),
            ("communities", "/admin/communities"), ("teams", "/admin/teams"), ("import", "/admin/import"),
            ("history", "/admin/history"))


def frame(prefix: str, body: list) -> html.Div:
    """A section's page: the tabs and the no-permission notice (both filled by the gate) and the body,
    hidden until the API has let the user in."""
    return html.Div(className=f"page admin {prefix}", children=[
        html.Div(className="page-head", children=[html.Nav(id=f"{prefix}-tabs", className="admin-tabs")]),
        html.Div(id=f"{prefix}-denied"),
        html.Div(id=f"{prefix}-body", hidden=True, children=body),
    ])


def tabs(active: str, lang: str) -> list:
    """Links to the sections of the administration, the open one marked."""
    return [dcc.Link(t(f"admin.tab.{name}", lang), href=path, id=f"admin-tab-{name}",
                     className="active" if name == active else "") for name, path in SECTIONS]


def denied(exc: Exception, lang: str) -> html.Div:
    """The no-permission notice: what it means, then the API's own reason (e.g. 403: role manager may not …)."""
    status = getattr(exc, "status", None)
    head = t("admin.denied", lang) if status == 403 else error_message(exc, lang)
    return html.Div(className="error admin-denied", id="admin-denied", role="alert", children=[
        html.B(head), html.Span(" " + str(exc), className="error-detail")])


def register_gate(prefix: str, active: str, probe: str) -> None:
    """The section's gate: ask the API for `probe` (the section's own list, one row); let the user in when
    it answers, else hide the body and say why. Re-asked when the session or the language changes."""

    @callback(Output(f"{prefix}-tabs", "children"), Output(f"{prefix}-denied", "children"),
              Output(f"{prefix}-body", "hidden"), Input("lang", "data"), Input("session", "data"))
    @page_callback()
    def gate(lang: str, session: dict):
        try:
            api_client.get(session["token"], probe, limit=1)
        except Exception as exc:  # noqa: BLE001 - a refusal or a failure: either way the forms stay hidden
            if not isinstance(exc, api_client.ApiError):
                log.exception("the administration gate failed")
            return [], denied(exc, lang), True
        return tabs(active, lang), None, False


def _translated(value, lang: str):
    if isinstance(value, str):
        return t(value, lang)
    return [{"label": t(key, lang), "value": v} for v, key in value]


def register_words(words: dict[tuple[str, str], str | list[tuple[str, str]]]) -> None:
    """One callback giving each (element id, property) its words in the chosen language: a key of
    dashboard.strings, or for a choice's options a list of (value, key)."""
    targets = list(words)

    @callback([Output(i, p) for i, p in targets], Input("lang", "data"))
    @page_callback(needs_session=False)
    def section_words(lang: str):
        return [_translated(words[target], lang) for target in targets]


def choices(values: Iterable[str], key_prefix: str) -> tuple[tuple[str, str], ...]:
    """Options of a choice: each value with its word's key `<key_prefix><value>`."""
    return tuple((v, f"{key_prefix}{v}") for v in values)


@dataclass(frozen=True)
class Field:
    """A labelled form field `<prefix>-<name>`: an input (`kind` text, number, password, date…) or, with
    `options` ((value, key) pairs), a row of radio buttons (a few choices, each visible at once). Its
    label's word is `label`, else admin.field.<name>."""

    name: str
    kind: str = "text"
    options: tuple[tuple[str, str], ...] | None = None
    label: str | None = None
    props: tuple[tuple[str, object], ...] = ()

    def component(self, prefix: str) -> html.Div:
        """The label and its control, as the form shows them."""
        fid = f"{prefix}-{self.name}"
        if self.options is not None:
            control = dcc.RadioItems(id=fid, options=[{"label": v, "value": v} for v, _ in self.options],
                                     inline=True, className="admin-choice", **dict(self.props))
        else:
            control = dcc.Input(id=fid, type=self.kind, autoComplete="off", **dict(self.props))
        return html.Div(className="admin-field", children=[html.Label(id=f"{fid}-label", htmlFor=fid), control])

    def words(self, prefix: str) -> dict:
        """The field's words for `register_words`: its label, and its options when it has any."""
        fid = f"{prefix}-{self.name}"
        out: dict = {(f"{fid}-label", "children"): self.label or f"admin.field.{self.name}"}
        if self.options is not None:
            out[(fid, "options")] = list(self.options)
        return out


def form_words(prefix: str, fields: Iterable[Field]) -> dict:
    """The words of every field of a form (see Field.words)."""
    return {k: v for f in fields for k, v in f.words(prefix).items()}


def body(values: dict, *, keep_empty: Iterable[str] = ()) -> dict:
    """A request body from a form's values: text trimmed, empty fields left out (the API's default or "no
    change"), except those in `keep_empty`, sent as null (a value cleared on purpose)."""
    out = {}
    for name, value in values.items():
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            if name in keep_empty:
                out[name] = None
            continue
        out[name] = value
    return out


def word(key: str, lang: str) -> str:
    """The word of a key when there is one, else the key as the API sent it (a count the cockpit does not
    know yet is still shown, under the API's own name)."""
    return t(key, lang) if key in STRINGS else key.rsplit(".", 1)[-1]


def part(value: object) -> str:
    """A key (a username, a school code…) as one segment of an API path, whatever characters it holds."""
    return quote(str(value).strip(), safe="")


def refusal(exc: Exception, lang: str, box_id: str) -> html.Div:
    """Why the API refused an action, beside the form: what it means and the API's own reason."""
    if not isinstance(exc, api_client.ApiError):
        log.error("an administration action failed", exc_info=exc)
        return html.Div(html.B(t("error.internal", lang)), className="error", id=box_id, role="alert")
    return html.Div(className="error", id=box_id, role="alert", children=[
        html.B(error_message(exc, lang)), html.Span(" " + str(exc), className="error-detail")])


def done(text: str, box_id: str) -> html.Div:
    """An action carried out, in words."""
    return html.Div(text, className="notice-ok", id=box_id, role="status")


def hint(text: str, box_id: str) -> html.Div:
    """What the form needs before it can ask the API anything (a key to change), in words."""
    return html.Div(text, className="error", id=box_id, role="alert")


def secret(title: str, pairs: list[tuple[str, str]], lang: str, box_id: str) -> html.Div:
    """Credentials the API generated, shown this once: copy them now, they are not kept anywhere."""
    return html.Div(className="admin-secret", id=box_id, role="status", children=[
        html.B(title),
        html.Dl(className="kv", children=[x for name, value in pairs
                                          for x in (html.Dt(name), html.Dd(html.Code(value or NO_DATA)))]),
        html.Div(t("admin.shown_once", lang), className="muted")])


def total_note(answer: dict, lang: str, note_id: str) -> html.Div:
    """How many rows the list shows of how many there are (refine the search for the rest)."""
    shown, total = len(answer.get("items", [])), answer.get("total", 0)
    key = "admin.total" if shown >= total else "admin.total.more"
    return html.Div(t(key, lang).format(shown=shown, total=total), className="muted table-note", id=note_id)


def clicked() -> dict | str | None:
    """The id of the button clicked, or None when the callback ran because buttons were drawn (not clicked)."""
    trigger = dash.ctx.triggered_id
    if not trigger or not dash.ctx.triggered or not dash.ctx.triggered[0]["value"]:
        return None
    return trigger


def scope_text(level: str | None, code: str | None, name: str | None, lang: str) -> str:
    """A scope as words: 市州 随州市 (421300)."""
    if not level:
        return NO_DATA
    where = f"{name} ({code})" if name else (code or "")
    return f"{t(level, lang)} {where}".strip()


def create_or_save(prefix: str, session: dict, lang: str, collection: str, key_name: str, key: str | None,
                   fields: dict, missing_key: str, *, create_only: dict | None = None, created=None):
    """What the 新建 and 保存 buttons of a form keyed by a natural key do: POST the record to
    `/admin/{collection}` (with `create_only`, fields the API takes at creation only), or PATCH
    `/admin/{collection}/{key}`. Returns (what to show beside the form, the changes counter's new
    value or dash.no_update): `created(answer)` shows what the creation answered, when given."""
    key = (key or "").strip()
    try:
        if clicked() == f"{prefix}-create":
            answer = api_client.send(session["token"], "POST", f"{ADMIN_API}/{collection}",
                                     body({key_name: key, **fields, **(create_only or {})})) or {}
            return (created(answer) if created else done(t("admin.created", lang).format(what=key), f"{prefix}-done"),
                    True)
        if not key:
            return hint(t(missing_key, lang), f"{prefix}-hint"), False
        api_client.send(session["token"], "PATCH", f"{ADMIN_API}/{collection}/{part(key)}", body(fields))
        return done(t("admin.saved", lang).format(what=key), f"{prefix}-done"), True
    except api_client.ApiError as exc:
        return refusal(exc, lang, f"{prefix}-error"), False


def counted(shown_and_changed: tuple, changed: int | None) -> tuple:
    """A form's answer and its changes counter, counted up only when something was written."""
    shown, wrote = shown_and_changed
    return shown, (changed or 0) + 1 if wrote else dash.no_update
