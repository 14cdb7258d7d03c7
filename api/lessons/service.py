"""Three-classroom figures of a scope, its sessions and the lessons in progress now.

Attribution: a session is *delivered* by the school of its main classroom, so the
delivered figures (scheduled, held, 开课率, hours, main classrooms, interruptions) of a
scope count the sessions whose main classroom is inside it. A session is *received* by
the schools of its receiving classrooms, so the received figures (receiving classrooms,
schools, classes, teaching points reached, pairs meeting their quota) count the
receiving classrooms inside the scope. Every query is bounded by the user's scope.
"""

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import HTTPException, status
from psycopg import Connection, sql

from api.auth.models import User
from api.lessons.models import (
    ChildLessons,
    LessonFigures,
    LessonSummary,
    LiveReceiver,
    LiveSession,
    SessionPage,
    SessionRow,
    WeekFigures,
)
from api.metrics.models import Bands, period_info
from api.metrics.settings import metrics_settings
from api.scopes.access import bounded
from api.scopes.models import Scope
from api.scopes.service import children
from core.period import Period, week_of
from core.scope import child_key
from core.settings import platform_settings
from rollups.settings import lesson_settings

KINDS = ("all", "dedicated", "master", "elite")

_DELIVERED = """
    SELECT {key} AS child, k.kind, count(*) AS sessions_scheduled,
           count(*) FILTER (WHERE ls.scheduled_end <= %(now)s) AS sessions_past,
           count(*) FILTER (WHERE ls.status = 'held') AS sessions_held,
           coalesce(sum(ls.main_streamed_minutes), 0) AS minutes,
           count(DISTINCT l.main_device_id) AS main_classrooms,
           count(*) FILTER (WHERE ls.interruptions > 0) AS sessions_interrupted
    FROM lesson_session ls
    JOIN remote_lesson l ON l.id = ls.lesson_id
    JOIN device d ON d.id = l.main_device_id
    JOIN school s ON s.code = d.school_code
    CROSS JOIN LATERAL (VALUES (l.kind), ('all')) AS k(kind)
    WHERE {where} AND ls.day BETWEEN %(day_from)s AND %(day_to)s
    GROUP BY 1, 2"""

_RECEIVED = """
    SELECT {key} AS child, k.kind, count(DISTINCT lr.device_id) AS receiving_classrooms,
           count(DISTINCT s.code) AS receiving_schools,
           count(DISTINCT lr.device_id || '/' || coalesce(rr.class_name, '')) AS receiving_classes,
           count(DISTINCT s.code) FILTER (WHERE s.stage = 'teaching_point') AS teaching_points_reached
    FROM lesson_session ls
    JOIN lesson_session_receiver lr ON lr.lesson_id = ls.lesson_id AND lr.day = ls.day
    JOIN remote_lesson l ON l.id = ls.lesson_id
    LEFT JOIN remote_lesson_receiver rr ON rr.lesson_id = lr.lesson_id AND rr.device_id = lr.device_id
    JOIN device d ON d.id = lr.device_id
    JOIN school s ON s.code = d.school_code
    CROSS JOIN LATERAL (VALUES (l.kind), ('all')) AS k(kind)
    WHERE {where} AND ls.status = 'held' AND lr.joined_at IS NOT NULL
      AND ls.day BETWEEN %(day_from)s AND %(day_to)s
    GROUP BY 1, 2"""

_TEACHING_POINTS = """
    SELECT {key} AS child, count(*) AS teaching_points
    FROM school s WHERE {where} AND s.stage = 'teaching_point' GROUP BY 1"""

# 常态化: a (main school, receiving school) pair meets its quota when every ISO week of the
# window in which it had a past session held at least `quota` sessions the receiver joined.
_PAIRS = """
    WITH base AS (
        SELECT {key} AS child, k.kind, md.school_code AS main_school, s.code AS receiving_school,
               date_trunc('week', ls.day) AS week,
               count(*) FILTER (WHERE ls.status = 'held' AND lr.joined_at IS NOT NULL) AS held
        FROM lesson_session ls
        JOIN lesson_session_receiver lr ON lr.lesson_id = ls.lesson_id AND lr.day = ls.day
        JOIN remote_lesson l ON l.id = ls.lesson_id
        JOIN device md ON md.id = l.main_device_id
        JOIN device d ON d.id = lr.device_id
        JOIN school s ON s.code = d.school_code
        CROSS JOIN LATERAL (VALUES (l.kind), ('all')) AS k(kind)
        WHERE {where} AND ls.day BETWEEN %(quota_from)s AND %(day_to)s AND ls.scheduled_end <= %(now)s
        GROUP BY 1, 2, 3, 4, 5
    ), pair AS (
        SELECT child, kind, bool_and(held >= %(quota)s) AS meets
        FROM base GROUP BY child, kind, main_school, receiving_school
    )
    SELECT child, kind, count(*) AS pairs, count(*) FILTER (WHERE meets) AS pairs_meeting_quota
    FROM pair GROUP BY 1, 2"""


def parse_week(week: str | None, today: date) -> tuple[str, date]:
    """The ISO week label and its Monday; the current week when none is given."""
    if week is None:
        year, number, _ = today.isocalendar()
    else:
        try:
            year, number = int(week[:4]), int(week[6:])
            date.fromisocalendar(year, number, 1)
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"no ISO week {week}") from exc
    return f"{year}-W{number:02d}", date.fromisocalendar(year, number, 1)


def _tz() -> ZoneInfo:
    return ZoneInfo(platform_settings().timezone)


def _ratio(num: float, den: float, digits: int = 4) -> float | None:
    return round(num / den, digits) if den else None


def _figures(kind: str, n: dict, weeks: float = 1.0) -> LessonFigures:
    g = defaultdict(int, n)
    return LessonFigures(
        kind=kind, sessions_scheduled=g["sessions_scheduled"], sessions_past=g["sessions_past"],
        sessions_held=g["sessions_held"], opening_rate=_ratio(g["sessions_held"], g["sessions_past"]),
        hours_delivered=round(g["minutes"] / 60, 2), main_classrooms=g["main_classrooms"],
        weekly_lessons_per_main_classroom=_ratio(g["sessions_held"], g["main_classrooms"] * weeks, 2),
        sessions_interrupted=g["sessions_interrupted"], receiving_classrooms=g["receiving_classrooms"],
        receiving_schools=g["receiving_schools"], receiving_classes=g["receiving_classes"],
        teaching_points=g["teaching_points"], teaching_points_reached=g["teaching_points_reached"],
        teaching_point_reach=_ratio(g["teaching_points_reached"], g["teaching_points"]),
        pairs=g["pairs"], pairs_meeting_quota=g["pairs_meeting_quota"],
        pairs_quota_rate=_ratio(g["pairs_meeting_quota"], g["pairs"]),
    )


def _numbers(conn: Connection, scope: Scope, user: User, params: dict) -> dict[tuple[str, str], dict]:
    """Numerators and denominators per (child, kind); each is additive across children."""
    where, extra = bounded(scope.level, user=user)
    key = child_key(scope.level)
    params = {"scope_code": scope.code, **extra, **params}
    numbers: dict[tuple[str, str], dict] = defaultdict(dict)
    for query in (_DELIVERED, _RECEIVED, _PAIRS):
        for row in conn.execute(sql.SQL(query).format(key=key, where=where), params).fetchall():
            numbers[(row.pop("child"), row.pop("kind"))].update(row)
    for row in conn.execute(sql.SQL(_TEACHING_POINTS).format(key=key, where=where), params).fetchall():
        for kind in KINDS:
            numbers[(row["child"], kind)]["teaching_points"] = row["teaching_points"]
    return numbers


def _combine(rows: list[dict]) -> dict:
    total: dict[str, int] = defaultdict(int)
    for row in rows:
        for name, value in row.items():
            total[name] += value
    return total


def _window(first: date, last: date, now: datetime) -> dict:
    """The parameters of the figures of the days first…last: the pairs' quota window is the
    LESSONS_QUOTA_WEEKS weeks ending with the week of `last`, or the days themselves if longer."""
    settings = lesson_settings()
    quota_from = min(first, week_of(last)[0] - timedelta(weeks=settings.quota_weeks - 1))
    return {"now": now, "day_from": first, "day_to": last, "quota": settings.quota_per_week,
            "quota_from": quota_from}


def _by_kind(numbers: dict[tuple[str, str], dict], weeks: float) -> list[LessonFigures]:
    return [_figures(kind, _combine([v for (_, k), v in numbers.items() if k == kind]), weeks) for kind in KINDS]


def summary(conn: Connection, scope: Scope, user: User, week: str | None, now: datetime | None = None,
            period: Period | None = None) -> LessonSummary:
    """Figures of one ISO week (or of a period, with the previous one) for the scope and each child, by
    lesson kind and in total."""
    now = now or datetime.now(UTC)
    if period is not None and not period.is_now:
        first, last = period.first, period.last
        year, number, _ = first.isocalendar()
        label, weeks = f"{year}-W{number:02d}", period.days / 7
    else:
        label, first = parse_week(week, now.astimezone(_tz()).date())
        last, weeks = first + timedelta(days=6), 1.0
    numbers = _numbers(conn, scope, user, _window(first, last, now))
    kids = children(conn, scope, user)
    answer = LessonSummary(
        scope=scope, week=label, week_start=first, week_end=last, as_of=now, figures=_by_kind(numbers, weeks),
        children=[ChildLessons(**kid.model_dump(), figures=[_figures(kind, numbers.get((kid.code, kind), {}), weeks)
                                                             for kind in KINDS]) for kid in kids],
        opening_rate_bands=Bands(good=metrics_settings().opening_rate_good, fair=metrics_settings().opening_rate_fair),
    )
    if period is None or period.is_now:
        return answer
    before = period.previous
    previous = (_by_kind(_numbers(conn, scope, user, _window(before.first, before.last, now)), before.days / 7)
                if before else None)
    return answer.model_copy(update={"period": period_info(period), "previous": previous})


def weekly(conn: Connection, scope: Scope, user: User, weeks: int, now: datetime | None = None,
           period: Period | None = None) -> list[WeekFigures]:
    """Delivered figures per ISO week over the last `weeks` weeks (or the weeks of a period, counting
    only its days), oldest first."""
    now = now or datetime.now(UTC)
    if period is not None and not period.is_now:
        first, monday = week_of(period.first)[0], week_of(period.last)[0]
        weeks = (monday - first).days // 7 + 1
        day_from, day_to = period.first, period.last
    else:
        _, monday = parse_week(None, now.astimezone(_tz()).date())
        first = monday - timedelta(weeks=weeks - 1)
        day_from, day_to = first, monday + timedelta(days=6)
    where, extra = bounded(scope.level, user=user)
    query = sql.SQL("""
        SELECT date_trunc('week', ls.day)::date AS week_start,
               count(*) FILTER (WHERE ls.scheduled_end <= %(now)s) AS sessions_past,
               count(*) FILTER (WHERE ls.status = 'held') AS sessions_held,
               coalesce(sum(ls.main_streamed_minutes), 0) AS minutes,
               count(*) FILTER (WHERE ls.interruptions > 0) AS sessions_interrupted,
               count(*) FILTER (WHERE ls.status = 'missed') AS sessions_missed
        FROM lesson_session ls
        JOIN remote_lesson l ON l.id = ls.lesson_id
        JOIN device d ON d.id = l.main_device_id
        JOIN school s ON s.code = d.school_code
        WHERE {where} AND ls.day BETWEEN %(first)s AND %(last)s
        GROUP BY 1""").format(where=where)
    rows = {r["week_start"]: r for r in conn.execute(query, {
        "scope_code": scope.code, **extra, "now": now, "first": day_from, "last": day_to})}
    out = []
    for i in range(weeks):
        start = first + timedelta(weeks=i)
        r = defaultdict(int, rows.get(start, {}))
        year, number, _ = start.isocalendar()
        out.append(WeekFigures(
            week=f"{year}-W{number:02d}", week_start=start, sessions_past=r["sessions_past"],
            sessions_held=r["sessions_held"], opening_rate=_ratio(r["sessions_held"], r["sessions_past"]),
            hours_delivered=round(r["minutes"] / 60, 2), sessions_interrupted=r["sessions_interrupted"],
            sessions_missed=r["sessions_missed"]))
    return out


def visible_lesson(where: sql.Composable) -> sql.Composable:
    """Predicate on remote_lesson `l`: its main classroom or a receiving classroom is inside the bound."""
    return sql.SQL("""(
        EXISTS (SELECT 1 FROM device d JOIN school s ON s.code = d.school_code
                WHERE d.id = l.main_device_id AND {where})
        OR EXISTS (SELECT 1 FROM remote_lesson_receiver r JOIN device d ON d.id = r.device_id
                   JOIN school s ON s.code = d.school_code WHERE r.lesson_id = l.id AND {where}))""").format(
        where=where)


def sessions(conn: Connection, scope: Scope, user: User, *, day_from: date, day_to: date,
             status_: str | None, kind: str | None, page: int, page_size: int | None) -> SessionPage:
    """Sessions delivered or received inside the scope, newest first, filtered and paged; the total
    counts every match, also for a page past the last one."""
    where, extra = bounded(scope.level, user=user)
    query = sql.SQL("""
        WITH m AS (
            SELECT ls.lesson_id, ls.day, l.kind, l.subject, l.main_device_id, ms.code AS main_school_code,
                   ms.name AS main_school_name, ls.scheduled_start, ls.scheduled_end, ls.status, ls.started_at,
                   ls.ended_at, ls.main_streamed_minutes, ls.receivers_expected, ls.receivers_joined,
                   ls.interruptions
            FROM lesson_session ls
            JOIN remote_lesson l ON l.id = ls.lesson_id
            JOIN device md ON md.id = l.main_device_id
            JOIN school ms ON ms.code = md.school_code
            WHERE ls.day BETWEEN %(day_from)s AND %(day_to)s
              AND (%(status)s::text IS NULL OR ls.status = %(status)s)
              AND (%(kind)s::text IS NULL OR l.kind = %(kind)s)
              AND {visible})
        SELECT t.total, p.* FROM (SELECT count(*) AS total FROM m) t
        LEFT JOIN LATERAL (SELECT * FROM m ORDER BY scheduled_start DESC, lesson_id
                           LIMIT %(limit)s OFFSET %(offset)s) p ON true
        ORDER BY p.scheduled_start DESC, p.lesson_id""").format(visible=visible_lesson(where))
    rows = conn.execute(query, {
        "scope_code": scope.code, **extra, "day_from": day_from, "day_to": day_to, "status": status_,
        "kind": kind, "limit": page_size, "offset": (page - 1) * (page_size or 0)}).fetchall()
    total = rows[0]["total"]  # one row at least: the count, beside an empty page when none is on it
    items = [SessionRow(**r) for r in rows if r["lesson_id"] is not None]
    return SessionPage(total=total, page=page, page_size=page_size or total, day_from=day_from, day_to=day_to,
                       items=items)


_LIVE = """
    WITH today AS (SELECT (%(now)s AT TIME ZONE %(tz)s)::date AS day, (%(now)s AT TIME ZONE %(tz)s)::time AS t)
    SELECT l.id AS lesson_id, l.kind, l.subject,
           (t.day + l.starts_at) AT TIME ZONE %(tz)s AS scheduled_start,
           (t.day + l.ends_at) AT TIME ZONE %(tz)s AS scheduled_end,
           l.main_device_id, ms.code AS main_school_code, ms.name AS main_school_name,
           coalesce(st.online, false) AS main_online, st.streaming AS main_streaming
    FROM remote_lesson l
    CROSS JOIN today t
    JOIN device md ON md.id = l.main_device_id
    JOIN school ms ON ms.code = md.school_code
    LEFT JOIN device_state st ON st.device_id = l.main_device_id
    LEFT JOIN calendar_day c ON c.day = t.day
    WHERE coalesce(c.is_school_day, extract(isodow FROM t.day) <= 5)
      AND l.weekday = extract(isodow FROM t.day) AND t.day BETWEEN l.valid_from AND l.valid_until
      AND t.t >= l.starts_at AND t.t < l.ends_at AND {visible}
    ORDER BY scheduled_start, l.id"""

_LIVE_RECEIVERS = """
    SELECT r.lesson_id, r.device_id, s.code AS school_code, s.name AS school_name, r.class_name,
           coalesce(st.online, false) AS online, st.in_use,
           coalesce((SELECT e.type = 'lesson_start' FROM device_event e
                     WHERE e.device_id = r.device_id AND e.lesson_id = r.lesson_id
                       AND e.type IN ('lesson_start', 'lesson_end') AND e.time >= %(since)s
                     ORDER BY e.time DESC LIMIT 1), false) AS joined
    FROM remote_lesson_receiver r
    JOIN device d ON d.id = r.device_id
    JOIN school s ON s.code = d.school_code
    LEFT JOIN device_state st ON st.device_id = r.device_id
    WHERE r.lesson_id = ANY(%(ids)s) AND {where}
    ORDER BY r.lesson_id, r.device_id"""


def live(conn: Connection, scope: Scope, user: User, now: datetime | None = None) -> list[LiveSession]:
    """Lessons whose slot is in progress now, with the state of the classrooms inside the scope."""
    now = now or datetime.now(UTC)
    where, extra = bounded(scope.level, user=user)
    params = {"scope_code": scope.code, **extra, "now": now, "tz": platform_settings().timezone}
    lessons = conn.execute(sql.SQL(_LIVE).format(visible=visible_lesson(where)), params).fetchall()
    if not lessons:
        return []
    since = min(r["scheduled_start"] for r in lessons) - timedelta(minutes=lesson_settings().join_early_min)
    receivers: dict[str, list[LiveReceiver]] = defaultdict(list)
    for r in conn.execute(sql.SQL(_LIVE_RECEIVERS).format(where=where),
                          {**params, "ids": [r["lesson_id"] for r in lessons], "since": since}):
        receivers[r.pop("lesson_id")].append(LiveReceiver(**r))
    return [LiveSession(**r, receivers=receivers[r["lesson_id"]]) for r in lessons]


def count_by_status(conn: Connection, user: User, day_from: date, day_to: date) -> dict[str, int]:
    """Sessions of a day range by status, among those delivered or received inside the user's scope."""
    where, _ = bounded(user.scope_level, "user_scope_code")
    query = sql.SQL("""
        SELECT ls.status, count(*) AS n FROM lesson_session ls
        JOIN remote_lesson l ON l.id = ls.lesson_id
        WHERE ls.day BETWEEN %(day_from)s AND %(day_to)s AND {visible}
        GROUP BY 1""").format(visible=visible_lesson(where))
    rows = conn.execute(query, {"day_from": day_from, "day_to": day_to, "user_scope_code": user.scope_code})
    return {r["status"]: r["n"] for r in rows}
