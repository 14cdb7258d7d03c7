"""Inspection records (巡课记录): made against the rubric, listed and counted per scope and period."""

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from psycopg import Connection, sql

from core.period import Period
from core.scope import CHILD_LEVEL

COLUMNS = ("id", "inspected_at", "inspector", "school_code", "school_name", "room", "device_id", "lesson_id",
           "day", "lesson_kind", "role", "subject", "teacher_present", "students_present", "receiving_connected",
           "picture_ok", "sound_ok", "board_in_use", "has_problem", "note", "snapshot_id")
KINDS = ("dedicated", "master", "elite", "local")


class RecordError(ValueError):
    """An inspection that cannot be recorded as asked; the message says why (422)."""


def window(period: Period) -> tuple[datetime, datetime]:
    """The instants a period's records fall between: `now` means today so far."""
    if period.is_now:
        return datetime.combine(period.first, time(0), ZoneInfo(period.zone)).astimezone(UTC), period.until
    return period.start, period.until


def lesson_of(conn: Connection, lesson_id: str | None, device_id: str) -> dict:
    """The kind, subject and role of the device in the lesson; a lesson of its own without one."""
    if lesson_id is None:
        return {"kind": "local", "subject": None, "role": "main"}
    row = conn.execute(
        """SELECT l.kind, l.subject,
                  CASE WHEN l.main_device_id = %(device)s THEN 'main'
                       WHEN EXISTS (SELECT 1 FROM remote_lesson_receiver r
                                    WHERE r.lesson_id = l.id AND r.device_id = %(device)s) THEN 'receiving' END AS role
           FROM remote_lesson l WHERE l.id = %(lesson)s""", {"lesson": lesson_id, "device": device_id}).fetchone()
    if row is None:
        raise RecordError(f"there is no remote lesson {lesson_id!r}")
    if row["role"] is None:
        raise RecordError(f"device {device_id} is neither the main nor a receiving classroom of lesson {lesson_id}")
    return dict(row)


def record(conn: Connection, body: dict, device: dict, inspector: str, now: datetime, tz: str) -> dict:
    """Store one inspection of the device's classroom; RecordError when the lesson or still does not fit."""
    lesson = lesson_of(conn, body["lesson_id"], device["id"])
    if lesson["kind"] == "local" and body["receiving_connected"] is not None:
        raise RecordError("receiving_connected is for remote lessons only: a lesson of the room's own has no "
                          "other classroom")
    if body["snapshot_id"] is not None:
        still = conn.execute("SELECT device_id FROM snapshot WHERE id = %s", (body["snapshot_id"],)).fetchone()
        if still is None or still["device_id"] != device["id"]:
            raise RecordError(f"snapshot {body['snapshot_id']} is not a kept still of device {device['id']}")
    return conn.execute(
        """INSERT INTO inspection (inspected_at, inspector, device_id, school_code, room, lesson_id, day, lesson_kind,
                                   role, subject, snapshot_id, teacher_present, students_present, receiving_connected,
                                   picture_ok, sound_ok, board_in_use, note)
           VALUES (%(now)s, %(inspector)s, %(device_id)s, %(school)s, %(room)s, %(lesson_id)s, %(day)s, %(kind)s,
                   %(role)s, %(subject)s, %(snapshot_id)s, %(teacher_present)s, %(students_present)s,
                   %(receiving_connected)s, %(picture_ok)s, %(sound_ok)s, %(board_in_use)s, %(note)s)
           RETURNING id""",
        {**body, **lesson, "device_id": device["id"], "now": now, "inspector": inspector,
         "school": device["school_code"], "room": device["room"],
         "day": now.astimezone(ZoneInfo(tz)).date()}).fetchone()["id"]


_LIST = """
SELECT i.*, s.name AS school_name
FROM inspection i JOIN school s ON s.code = i.school_code
WHERE school_in_scope(%(level)s, %(code)s, i.school_code)
  AND i.inspected_at >= %(start)s AND i.inspected_at < %(end)s
  AND (%(device)s::text IS NULL OR i.device_id = %(device)s)
  AND (%(kind)s::text IS NULL OR i.lesson_kind = %(kind)s)
  AND (%(problem)s::boolean IS NULL OR i.has_problem = %(problem)s)
ORDER BY i.inspected_at DESC, i.id DESC
LIMIT %(limit)s
"""


def list_records(conn: Connection, level: str, code: str, start: datetime, end: datetime, *, device: str | None = None,
                 kind: str | None = None, problem: bool | None = None, limit: int = 500) -> list[dict]:
    """Inspections in the scope between two instants, newest first."""
    return conn.execute(_LIST, {"level": level, "code": code, "start": start, "end": end, "device": device,
                                "kind": kind, "problem": problem, "limit": limit}).fetchall()


def one(conn: Connection, inspection_id: int) -> dict | None:
    """One inspection with its school's name."""
    return conn.execute("SELECT i.*, s.name AS school_name FROM inspection i JOIN school s ON s.code = i.school_code "
                        "WHERE i.id = %s", (inspection_id,)).fetchone()


_COUNTS = """
SELECT count(DISTINCT i.device_id) AS classrooms_inspected, count(*) AS inspections,
       count(*) FILTER (WHERE i.has_problem) AS with_problems,
       count(DISTINCT i.device_id) FILTER (WHERE i.has_problem) AS classrooms_with_problems
FROM inspection i
WHERE school_in_scope(%(level)s, %(code)s, i.school_code) AND i.inspected_at >= %(start)s AND i.inspected_at < %(end)s
"""

_BY_KIND = """
SELECT i.lesson_kind AS kind, count(DISTINCT i.device_id) AS classrooms_inspected, count(*) AS inspections,
       count(*) FILTER (WHERE i.has_problem) AS with_problems
FROM inspection i
WHERE school_in_scope(%(level)s, %(code)s, i.school_code) AND i.inspected_at >= %(start)s AND i.inspected_at < %(end)s
GROUP BY 1
"""

# Per child of the scope: administrative levels by the school's column, a community's schools one by one.
_BY_CHILD = """
SELECT c.code, c.name, count(DISTINCT i.device_id) AS classrooms_inspected, count(i.id) AS inspections,
       count(i.id) FILTER (WHERE i.has_problem) AS with_problems
FROM {children} c
LEFT JOIN school s ON s.{child_column} = c.code AND school_in_scope(%(level)s, %(code)s, s.code)
LEFT JOIN inspection i ON i.school_code = s.code AND i.inspected_at >= %(start)s AND i.inspected_at < %(end)s
WHERE {parent}
GROUP BY c.code, c.name ORDER BY c.code
"""


def _share(row: dict) -> dict:
    return {**row, "problem_share": row["with_problems"] / row["inspections"] if row["inspections"] else None}


def _children(conn: Connection, level: str, code: str, params: dict) -> list[dict]:
    child = CHILD_LEVEL.get(level)
    if child is None:
        return []
    if level == "community":
        parent = sql.SQL("c.code IN (SELECT school_code FROM community_member WHERE community_code = %(code)s)")
    else:
        parent = sql.SQL("c.{} = %(code)s").format(sql.Identifier("code" if level == "school" else f"{level}_code"))
    query = sql.SQL(_BY_CHILD).format(children=sql.Identifier(child), parent=parent,
                                      child_column=sql.Identifier("code" if child == "school" else f"{child}_code"))
    return [{**_share(r), "level": child} for r in conn.execute(query, params)]


def figures(conn: Connection, level: str, code: str, start: datetime, end: datetime) -> dict:
    """Classrooms inspected, inspections, the share that found a problem: in all, by kind, by child."""
    params = {"level": level, "code": code, "start": start, "end": end}
    totals = _share(dict(conn.execute(_COUNTS, params).fetchone()))
    kinds = {r["kind"]: _share(r) for r in conn.execute(_BY_KIND, params)}
    by_kind = [kinds.get(k, {"kind": k, "classrooms_inspected": 0, "inspections": 0, "with_problems": 0,
                             "problem_share": None}) for k in KINDS]
    return {**totals, "by_kind": by_kind, "children": _children(conn, level, code, params)}
