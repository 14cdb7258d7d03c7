"""The wall of classrooms in session and one classroom enlarged, set-based in SQL.

A classroom is in session when it is a main or receiving classroom of a remote lesson that runs
now — by the timetable on a school day, or because its main recorder is streaming it — or a
recorder streaming a lesson of its own (kind `local`). Its cameras' latest stills count when
taken in the last `FRESH_S` seconds; older ones say the picture has stopped coming (no_picture).
"""

from datetime import UTC, datetime, timedelta

from psycopg import Connection

from api.inspection import links
from core.calendar import SchoolCalendar
from patrol.video_health import PROBLEMS

FRESH_S = 300  # a still older than this is not "the picture now"
SHOWN_FIRST = ("students", "panorama", "teacher", "blackboard")  # the camera a tile shows, healthy ones
HISTORY = 12  # stills per camera in the enlarged view at most

_IN_SESSION = """
WITH slot AS (
    SELECT l.id AS lesson_id FROM remote_lesson l
    WHERE %(school_day)s AND l.weekday = extract(isodow FROM %(today)s::date)
      AND %(today)s::date BETWEEN l.valid_from AND l.valid_until
      AND %(local_time)s::time >= l.starts_at AND %(local_time)s::time < l.ends_at
), live AS (
    SELECT st.device_id, st.last_values ->> 'lesson_id' AS lesson_id
    FROM device_state st JOIN device d ON d.id = st.device_id
    WHERE d.kind = 'recorder' AND st.online AND st.streaming
), running AS (
    SELECT lesson_id FROM slot
    UNION
    SELECT l.id FROM live JOIN remote_lesson l ON l.id = live.lesson_id AND l.main_device_id = live.device_id
), rooms AS (
    SELECT l.main_device_id AS device_id, 'main' AS role, l.id AS lesson_id, l.kind, l.subject, l.starts_at,
           l.ends_at
    FROM running r JOIN remote_lesson l ON l.id = r.lesson_id
    UNION ALL
    SELECT rr.device_id, 'receiving', l.id, l.kind, l.subject, l.starts_at, l.ends_at
    FROM running r JOIN remote_lesson l ON l.id = r.lesson_id JOIN remote_lesson_receiver rr ON rr.lesson_id = l.id
    UNION ALL
    SELECT live.device_id, 'main', NULL, 'local', NULL, NULL::time, NULL::time FROM live
), one AS (
    SELECT DISTINCT ON (device_id) * FROM rooms ORDER BY device_id, (lesson_id IS NULL), role, lesson_id
)
SELECT o.device_id, d.kind AS device_kind, o.role, o.lesson_id, o.kind, o.subject, o.starts_at, o.ends_at,
       d.room, d.school_code, s.name AS school_name, coalesce(st.online, false) AS online,
       coalesce(c.cameras, '[]') AS cameras
FROM one o JOIN device d ON d.id = o.device_id JOIN school s ON s.code = d.school_code
LEFT JOIN device_state st ON st.device_id = o.device_id
LEFT JOIN LATERAL (
    SELECT jsonb_agg(jsonb_build_object('camera', x.camera, 'snapshot_id', x.snapshot_id, 'taken_at', x.taken_at,
                                        'problems', x.problems) ORDER BY x.camera) AS cameras
    FROM snapshot_camera x WHERE x.device_id = o.device_id AND x.taken_at >= %(fresh)s) c ON true
WHERE d.kind IN ('recorder', 'board') AND school_in_scope(%(level)s, %(code)s, d.school_code)
  AND (%(device)s::text IS NULL OR o.device_id = %(device)s)
ORDER BY d.school_code, d.room, o.device_id
"""


def _clock(calendar: SchoolCalendar, now: datetime) -> dict:
    local = calendar.local(now)
    return {"school_day": calendar.is_school_day(local.date()), "today": local.date(),
            "local_time": local.time().replace(tzinfo=None), "fresh": now - timedelta(seconds=FRESH_S)}


def _tile(row: dict, now: datetime) -> dict:
    """A classroom's health, its problems and the still its tile shows."""
    cameras = [{**c, "taken_at": datetime.fromisoformat(c["taken_at"]).astimezone(UTC)} for c in row["cameras"]]
    found = sorted({p for c in cameras for p in c["problems"]}, key=PROBLEMS.index)
    shown = sorted(cameras, key=lambda c: (not c["problems"], SHOWN_FIRST.index(c["camera"])))
    health = "no_picture" if not cameras else "problem" if found else "ok"
    first = shown[0] if shown else None
    return {**row, "cameras": cameras, "problems": found, "health": health,
            "snapshot_id": first["snapshot_id"] if first else None,
            "image": links.link(first["snapshot_id"], "thumb", now) if first else None}


def in_session(conn: Connection, level: str, code: str, calendar: SchoolCalendar, now: datetime,
               device: str | None = None) -> list[dict]:
    """The classrooms in session in the scope now (or just the one device), as the wall shows them."""
    rows = conn.execute(_IN_SESSION, {**_clock(calendar, now), "level": level, "code": code,
                                      "device": device}).fetchall()
    return [_tile(r, now) for r in rows]


def wall(conn: Connection, level: str, code: str, calendar: SchoolCalendar, now: datetime, *,
         kind: str | None = None, subject: str | None = None, school: str | None = None,
         health: str | None = None) -> dict:
    """The wall: every classroom in session counted, the filtered ones listed."""
    rooms = in_session(conn, level, code, calendar, now)
    by_health = {h: sum(1 for r in rooms if r["health"] == h) for h in ("ok", "problem", "no_picture")}
    shown = [r for r in rooms
             if (kind is None or r["kind"] == kind) and (subject is None or r["subject"] == subject)
             and (school is None or r["school_code"].strip() == school)
             and (health is None or r["health"] == health or health in r["problems"])]
    schools = sorted({(r["school_code"].strip(), r["school_name"]) for r in rooms})
    return {"as_of": now, "in_session": len(rooms), "by_health": by_health,
            "subjects": sorted({r["subject"] for r in rooms if r["subject"]}),
            "schools": [{"code": c, "name": n} for c, n in schools], "classrooms": shown}


_DEVICE = "SELECT id, kind, school_code, room FROM device WHERE id = %s"

_LESSON_ROOMS = """
SELECT 'main' AS role, d.id AS device_id, s.name AS school_name, d.room, NULL AS class_name
FROM remote_lesson l JOIN device d ON d.id = l.main_device_id JOIN school s ON s.code = d.school_code
WHERE l.id = %(lesson)s
UNION ALL
SELECT 'receiving', d.id, s.name, d.room, rr.class_name
FROM remote_lesson_receiver rr JOIN device d ON d.id = rr.device_id JOIN school s ON s.code = d.school_code
WHERE rr.lesson_id = %(lesson)s
ORDER BY 1, 3, 4
"""

_ROOM_DEVICES = """
SELECT d.id AS device_id, d.kind, coalesce(st.online, false) AS online, st.last_seen, st.streaming, st.recording
FROM device d LEFT JOIN device_state st ON st.device_id = d.id
WHERE d.school_code = %(school)s AND (d.room = %(room)s OR d.id = %(device)s)
ORDER BY d.kind, d.id
"""

_STILLS = """
SELECT id AS snapshot_id, camera, taken_at, problems FROM (
    SELECT s.*, row_number() OVER (PARTITION BY s.camera ORDER BY s.taken_at DESC, s.id DESC) AS n
    FROM snapshot s WHERE s.device_id = %(device)s) x
WHERE n <= %(most)s ORDER BY camera, taken_at DESC
"""


def device_of(conn: Connection, device_id: str) -> dict | None:
    """A device in service: id, kind, school_code, room."""
    return conn.execute(_DEVICE, (device_id,)).fetchone()


def classroom(conn: Connection, device: dict, calendar: SchoolCalendar, now: datetime, recent: list[dict]) -> dict:
    """One classroom enlarged (the device checked against the user's scope by the caller)."""
    school = device["school_code"]
    session = in_session(conn, "school", school, calendar, now, device["id"])
    here = session[0] if session else None
    lesson = None
    if here:
        rooms = conn.execute(_LESSON_ROOMS, {"lesson": here["lesson_id"]}).fetchall() if here["lesson_id"] else []
        main = next((r for r in rooms if r["role"] == "main"), None)
        lesson = {"lesson_id": here["lesson_id"], "kind": here["kind"], "subject": here["subject"],
                  "role": here["role"], "starts_at": here["starts_at"], "ends_at": here["ends_at"],
                  "main": main, "receivers": [r for r in rooms if r["role"] == "receiving"]}
    stills: dict[str, list[dict]] = {}
    for s in conn.execute(_STILLS, {"device": device["id"], "most": HISTORY}):
        stills.setdefault(s["camera"], []).append({
            **s, "thumb": links.link(s["snapshot_id"], "thumb", now), "image": links.link(s["snapshot_id"], "full", now)})
    name = conn.execute("SELECT name FROM school WHERE code = %s", (school,)).fetchone()["name"]
    return {"device_id": device["id"], "device_kind": device["kind"], "school_code": school, "school_name": name,
            "room": device["room"], "in_session": here is not None, "lesson": lesson,
            "devices": conn.execute(_ROOM_DEVICES, {"school": school, "room": device["room"],
                                                    "device": device["id"]}).fetchall(),
            "cameras": [{"camera": c, "stills": v} for c, v in sorted(stills.items())], "inspections": recent}


def image(conn: Connection, snapshot_id: int, size: str) -> bytes | None:
    """A still's JPEG, or its small copy; None when it is no longer kept."""
    column = "thumb" if size == "thumb" else "jpeg"
    row = conn.execute(f"SELECT {column} AS data FROM snapshot WHERE id = %s",  # noqa: S608 - one of two names
                       (snapshot_id,)).fetchone()
    return bytes(row["data"]) if row else None
