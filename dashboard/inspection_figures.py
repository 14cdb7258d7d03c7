"""The 巡课 wall's pieces, as pure functions: a classroom's tile and badge, the live refresh (a patch of
the tiles that changed, nothing when none did), the enlarged classroom, the figures table.

Pictures travel apart from the page: a tile's `<img>` points at the cockpit's still route
(dashboard/snapshot_images.py) with the signed link the API gave, which stays the same for a still
for minutes, so the browser fetches each picture once. A refresh sends only the tiles whose still or
health changed, and remembers what it sent as one short signature per tile.
"""

import zlib

from dash import Patch, html

from dashboard.i18n import fmt_count, fmt_rate, fmt_time, t

API_STILLS = "/api/v1/snapshots/"
COCKPIT_STILLS = "/stills/"  # the cockpit's own path for them (dashboard/snapshot_images.py)
PROBLEM_ORDER = ("black", "covered", "frozen", "blurred", "overexposed", "underexposed")
HEALTH_FILTERS = ("ok", "problem", "no_picture", *PROBLEM_ORDER)
KINDS = ("dedicated", "master", "elite", "local")
RUBRIC = ("teacher_present", "students_present", "receiving_connected", "picture_ok", "sound_ok", "board_in_use")


def cockpit_src(link: str | None) -> str | None:
    """The cockpit's path for a still link of the API (None stays None; anything else is refused)."""
    if not link or not link.startswith(API_STILLS):
        return None
    return COCKPIT_STILLS + link[len(API_STILLS):]


def badge(room: dict, lang: str) -> tuple[str, str]:
    """A classroom's badge: its words and its class (ok, problem, none)."""
    if room["health"] == "ok":
        return t("inspection.ok", lang), "ok"
    if room["health"] == "no_picture":
        return t("inspection.no_picture", lang), "none"
    return " · ".join(t(f"inspection.problem.{p}", lang) for p in room["problems"]), "problem"


def lesson_line(room: dict, lang: str) -> str:
    """What the room is doing: kind · subject · its role."""
    parts = [t(f"inspection.kind.{room['kind']}", lang)]
    if room.get("subject"):
        parts.append(room["subject"])
    if room["kind"] != "local":
        parts.append(t(f"inspection.role.{room['role']}", lang))
    return " · ".join(parts)


def tile(room: dict, lang: str) -> html.Div:
    """One classroom on the wall: its still, its badge, where it is and what lesson; a click enlarges it."""
    words, kind = badge(room, lang)
    src = cockpit_src(room.get("image"))
    picture = html.Img(src=src, className="insp-img", alt=words) if src else html.Div(words, className="insp-img insp-none")
    return html.Div(id={"type": "inspection-tile", "device": room["device_id"]}, n_clicks=0, role="button",
                    className=f"insp-tile insp-{kind}", title=room["device_id"], children=[
                        picture, html.Span(words, className=f"insp-badge insp-badge-{kind}",
                                           id=f"inspection-badge-{room['device_id']}"),
                        html.Div(f"{room['school_name']} · {room['room']}", className="insp-where"),
                        html.Div(lesson_line(room, lang), className="insp-what")])


def signature(room: dict) -> str:
    """Eight characters that change when the tile would: its still, its health, its problems."""
    text = f"{room['device_id']}|{room.get('snapshot_id')}|{room.get('image')}|{room['health']}|{room['problems']}"
    return f"{zlib.crc32(text.encode()):08x}"


def wall_key(rooms: list[dict], lang: str) -> str:
    """What the grid is made of: the language and the classrooms in their order."""
    return f"{zlib.crc32((lang + '|' + ','.join(r['device_id'] for r in rooms)).encode()):08x}"


def refresh(rooms: list[dict], lang: str, shown: dict | None, choices: object = None) -> tuple[list | Patch | None, dict]:
    """The grid's new children — all of them when the classrooms or the language changed, a patch of the
    tiles that changed otherwise, None when nothing did — and what the grid shows now (with a signature
    of `choices`, the filters' options, which `choices_changed` compares)."""
    key, sigs = wall_key(rooms, lang), [signature(r) for r in rooms]
    now = {"key": key, "sigs": "".join(sigs), "choices": f"{zlib.crc32(repr((lang, choices)).encode()):08x}"}
    if not shown or shown.get("key") != key:
        return [tile(r, lang) for r in rooms] or [html.Div(t("empty", lang), className="empty")], now
    before = shown.get("sigs", "")
    changed = [i for i, s in enumerate(sigs) if before[8 * i:8 * i + 8] != s]
    if not changed:
        return None, now
    patch = Patch()
    for i in changed:
        patch[i] = tile(rooms[i], lang)
    return patch, now


def choices_changed(shown: dict | None, now: dict) -> bool:
    """True when the filters' options differ from those the page has (or it has none yet)."""
    return not shown or shown.get("choices") != now["choices"]


def health_options(lang: str) -> list[dict]:
    """The health filter's choices: a classroom's health, or one problem."""
    return [{"label": t(f"inspection.{h}" if h in ("ok", "problem", "no_picture") else f"inspection.problem.{h}", lang),
             "value": h} for h in HEALTH_FILTERS]


def kind_options(lang: str) -> list[dict]:
    """The kinds of lesson to filter by."""
    return [{"label": t(f"inspection.kind.{k}", lang), "value": k} for k in KINDS]


def rubric_options(remote: bool, lang: str) -> list[dict]:
    """The rubric's boxes; "connected" only for a remote lesson."""
    return [{"label": t(f"inspection.rubric.{r}", lang), "value": r} for r in RUBRIC
            if remote or r != "receiving_connected"]


def inspection_body(lesson_id: str | None, snapshot_id: int | None, ticked: list[str], note: str | None) -> dict:
    """The POST body of an inspection: each rubric box ticked means fine (connected only for a remote lesson)."""
    body = {"lesson_id": lesson_id, "snapshot_id": snapshot_id, "note": (note or "").strip()}
    for item in RUBRIC:
        if item == "receiving_connected":
            body[item] = (item in ticked) if lesson_id else None
        else:
            body[item] = item in ticked
    return body


def first_still(view: dict) -> dict | None:
    """The still the enlarged view opens on: the newest with a problem, else the newest of the first camera."""
    newest = [c["stills"][0] for c in view["cameras"] if c["stills"]]
    if not newest:
        return None
    return next((s for s in newest if s["problems"]), newest[0])


def still_caption(still: dict | None, camera: str | None, lang: str) -> str:
    """Which camera, when, and its problems."""
    if still is None:
        return t("inspection.no_still", lang)
    problems = " · ".join(t(f"inspection.problem.{p}", lang) for p in still["problems"]) or t("inspection.ok", lang)
    return f"{t(f'inspection.camera.{camera}', lang) if camera else ''} {fmt_time(still['taken_at'], seconds=True)} {problems}"


def strip(view: dict, lang: str) -> list:
    """Each camera's recent stills, newest first, as small pictures to choose from."""
    rows = []
    for camera in view["cameras"]:
        thumbs = [html.Img(src=cockpit_src(s["thumb"]), n_clicks=0, className="insp-thumb" + (" insp-thumb-bad" if s["problems"] else ""),
                           title=fmt_time(s["taken_at"], seconds=True),
                           id={"type": "inspection-still", "snapshot": s["snapshot_id"], "camera": camera["camera"]})
                  for s in camera["stills"]]
        rows.append(html.Div(className="insp-strip-row", children=[
            html.Span(t(f"inspection.camera.{camera['camera']}", lang), className="insp-strip-label"), *thumbs]))
    return rows or [html.Div(t("inspection.no_still", lang), className="muted")]


def lesson_facts(view: dict, lang: str) -> html.Dl:
    """The lesson now: kind, subject, hours, main and receiving classrooms."""
    lesson = view.get("lesson")
    if not lesson:
        return html.Dl(className="kv", children=[html.Dt(t("inspection.lesson", lang)),
                                                html.Dd(t("inspection.not_in_session", lang))])
    hours = f"{str(lesson['starts_at'])[:5]}–{str(lesson['ends_at'])[:5]}" if lesson.get("starts_at") else ""
    facts = [(t("inspection.lesson", lang), f"{lesson_line({**lesson, 'kind': lesson['kind']}, lang)} {hours}".strip())]
    if lesson.get("main"):
        facts.append((t("inspection.main_room", lang), f"{lesson['main']['school_name']} {lesson['main']['room']}"))
    if lesson.get("receivers"):
        facts.append((t("inspection.receivers", lang), "、".join(f"{r['school_name']} {r['room']}"
                                                              for r in lesson["receivers"])))
    return html.Dl(className="kv", children=[x for k, v in facts for x in (html.Dt(k), html.Dd(v))])


def devices_line(view: dict, lang: str) -> html.Div:
    """The devices in the room, each online or not."""
    return html.Div(className="insp-devices", children=[
        html.Span(f"{d['device_id']} {t('inspection.online' if d['online'] else 'inspection.offline', lang)}",
                  className="state-on" if d["online"] else "state-off") for d in view["devices"]])


def records_rows(rows: list[dict], lang: str, where: bool = True) -> list[list]:
    """Inspection records: when, who, (where, what lesson,) the result, the note."""
    out = []
    for r in rows:
        result = html.Span(t("inspection.result.problem" if r["has_problem"] else "inspection.result.ok", lang),
                           className="light light-missed" if r["has_problem"] else "light light-met")
        place = [f"{r['school_name']} {r['room']}",
                 t(f"inspection.kind.{r['lesson_kind']}", lang) + (f" · {r['subject']}" if r.get("subject") else "")]
        out.append([fmt_time(r["inspected_at"]), r["inspector"], *(place if where else []), result, r["note"] or "—"])
    return out


def kind_rows(figures: dict, lang: str) -> list[list]:
    """Inspections by kind of lesson, and in all."""
    rows = [[t(f"inspection.kind.{k['kind']}", lang), fmt_count(k["classrooms_inspected"], lang),
             fmt_count(k["inspections"], lang), fmt_count(k["with_problems"], lang), fmt_rate(k["problem_share"])]
            for k in figures["by_kind"]]
    rows.append([html.B(t("inspection.total", lang)), fmt_count(figures["classrooms_inspected"], lang),
                 fmt_count(figures["inspections"], lang), fmt_count(figures["with_problems"], lang),
                 fmt_rate(figures["problem_share"])])
    return rows
