"""Sessions from the timetable, matched set-based to what the classrooms reported.

A session is one occurrence of a remote lesson on a school day. Its main classroom
streamed during a minute of the slot when a `stream_start`..`stream_stop` interval of
the main recorder covers the middle of that minute, or a `recorder_telemetry` reading
with `streaming` and the lesson's id covers it (a reading covers the
`telemetry_cover_s` seconds before it). A receiving classroom joined when it sent a
`lesson_start` for the lesson between `join_early_min` before the start and the end.
"""

from datetime import date, datetime

from psycopg import Connection

from core.settings import platform_settings
from rollups.settings import LessonSettings, lesson_settings

_MATCH = """
-- The timetabled slots of the day range: school days only (calendar_day exceptions, else
-- Monday to Friday), the lesson's weekday, inside its validity, in local time.
WITH days AS (
    SELECT g::date AS day FROM generate_series(%(day_from)s::date, %(day_to)s::date, interval '1 day') AS g
), school_days AS (
    SELECT days.day FROM days LEFT JOIN calendar_day c ON c.day = days.day
    WHERE coalesce(c.is_school_day, extract(isodow FROM days.day) <= 5)
), slot AS (
    SELECT l.id AS lesson_id, d.day, l.main_device_id,
           (d.day + l.starts_at) AT TIME ZONE %(tz)s AS s_start,
           (d.day + l.ends_at) AT TIME ZONE %(tz)s AS s_end
    FROM remote_lesson l
    JOIN school_days d ON extract(isodow FROM d.day) = l.weekday AND d.day BETWEEN l.valid_from AND l.valid_until
), ev AS (
    SELECT sl.lesson_id, sl.day, sl.s_end, e.type, e.time,
           lead(e.time) OVER (PARTITION BY sl.lesson_id, sl.day ORDER BY e.time, e.seq) AS next_time
    FROM slot sl
    JOIN device_event e ON e.device_id = sl.main_device_id AND e.lesson_id = sl.lesson_id
     AND e.type IN ('stream_start', 'stream_stop')
     AND e.time >= sl.s_start - make_interval(mins => %(early)s) AND e.time < sl.s_end
), streamed_by_event AS (
    SELECT lesson_id, day, time AS t0, least(coalesce(next_time, s_end), s_end, %(now)s) AS t1
    FROM ev WHERE type = 'stream_start'
), minute AS (
    SELECT sl.lesson_id, sl.day, sl.main_device_id, m
    FROM slot sl,
         generate_series(sl.s_start, least(sl.s_end, %(now)s) - interval '1 minute', interval '1 minute') AS m
    WHERE sl.s_start < %(now)s
), covered AS (
    SELECT mi.lesson_id, mi.day, mi.m FROM minute mi
    WHERE EXISTS (SELECT 1 FROM streamed_by_event b
                  WHERE b.lesson_id = mi.lesson_id AND b.day = mi.day
                    AND b.t0 <= mi.m + interval '30 seconds' AND b.t1 > mi.m + interval '30 seconds')
       OR EXISTS (SELECT 1 FROM recorder_telemetry r
                  WHERE r.device_id = mi.main_device_id AND r.streaming AND r.lesson_id = mi.lesson_id
                    AND r.time >= mi.m + interval '30 seconds'
                    AND r.time < mi.m + interval '30 seconds' + make_interval(secs => %(cover)s))
), runs AS (
    SELECT lesson_id, day, min(m) AS r0, max(m) + interval '1 minute' AS r1
    FROM (SELECT lesson_id, day, m,
                 m - row_number() OVER (PARTITION BY lesson_id, day ORDER BY m) * interval '1 minute' AS island
          FROM covered) AS c
    GROUP BY lesson_id, day, island
), stream AS (
    SELECT lesson_id, day, min(r0) AS started_at, max(r1) AS ended_at,
           sum(extract(epoch FROM r1 - r0))::int / 60 AS minutes,
           count(*) FILTER (WHERE r0 - prev_end >= make_interval(mins => %(gap)s)) AS breaks
    FROM (SELECT *, lag(r1) OVER (PARTITION BY lesson_id, day ORDER BY r0) AS prev_end FROM runs) AS r
    GROUP BY lesson_id, day
), joined AS (
    SELECT sl.lesson_id, sl.day, rr.device_id, min(e.time) AS joined_at
    FROM slot sl
    JOIN remote_lesson_receiver rr ON rr.lesson_id = sl.lesson_id
    LEFT JOIN device_event e ON e.device_id = rr.device_id AND e.lesson_id = sl.lesson_id
     AND e.type = 'lesson_start' AND e.time >= sl.s_start - make_interval(mins => %(early)s) AND e.time < sl.s_end
    GROUP BY sl.lesson_id, sl.day, rr.device_id
), judged AS (
    SELECT sl.lesson_id, sl.day, sl.s_start, sl.s_end, st.started_at, st.ended_at,
           coalesce(st.minutes, 0) AS minutes,
           (SELECT count(*) FROM joined j WHERE j.lesson_id = sl.lesson_id AND j.day = sl.day) AS expected,
           (SELECT count(j.joined_at) FROM joined j WHERE j.lesson_id = sl.lesson_id AND j.day = sl.day) AS joined,
           coalesce(st.breaks, 0) + CASE
               WHEN st.ended_at < least(sl.s_end, %(now)s) - make_interval(mins => %(end_tol)s) THEN 1 ELSE 0
           END AS interruptions
    FROM slot sl LEFT JOIN stream st ON st.lesson_id = sl.lesson_id AND st.day = sl.day
), inserted AS (
    INSERT INTO lesson_session (lesson_id, day, scheduled_start, scheduled_end, status, started_at, ended_at,
                                main_streamed_minutes, receivers_expected, receivers_joined, interruptions,
                                matched_at)
    SELECT lesson_id, day, s_start, s_end,
           CASE
               WHEN started_at IS NULL OR started_at > s_start + make_interval(mins => %(grace)s) THEN
                   CASE WHEN %(now)s >= s_start + make_interval(mins => %(grace)s) THEN 'missed' ELSE 'scheduled' END
               WHEN %(now)s < s_end THEN 'scheduled'
               WHEN minutes >= %(share)s * extract(epoch FROM s_end - s_start) / 60
                    AND joined >= %(min_receivers)s THEN 'held'
               WHEN interruptions > 0 THEN 'interrupted'
               ELSE 'partial'
           END,
           started_at, ended_at, minutes, expected, joined, interruptions, %(now)s
    FROM judged
    RETURNING lesson_id, day, status
)
INSERT INTO lesson_session_receiver (lesson_id, day, device_id, joined_at)
SELECT j.lesson_id, j.day, j.device_id, j.joined_at
FROM joined j JOIN inserted i ON i.lesson_id = j.lesson_id AND i.day = j.day
"""


def match_params(day_from: date, day_to: date, now: datetime, settings: LessonSettings) -> dict:
    """The parameters of the matching query."""
    return {
        "day_from": day_from, "day_to": day_to, "now": now, "tz": platform_settings().timezone,
        "early": settings.join_early_min, "cover": settings.telemetry_cover_s, "gap": settings.gap_tolerance_min,
        "end_tol": settings.end_tolerance_min, "grace": settings.missed_after_min,
        "share": settings.held_stream_share, "min_receivers": settings.held_min_receivers,
    }


def match_sessions(conn: Connection, day_from: date, day_to: date, now: datetime,
                   settings: LessonSettings | None = None) -> int:
    """Rebuild the sessions of a day range from the timetable and the reports; return how many there are."""
    params = match_params(day_from, day_to, now, settings or lesson_settings())
    with conn.transaction():
        # one rebuild at a time (the rollups' round and an operator's POST /lessons/match): two would both
        # delete the range and then insert the same sessions
        conn.execute("SELECT pg_advisory_xact_lock(742004)")
        conn.execute("DELETE FROM lesson_session WHERE day BETWEEN %(day_from)s AND %(day_to)s", params)
        conn.execute(_MATCH, params)
        row = conn.execute("SELECT count(*) AS n FROM lesson_session WHERE day BETWEEN %(day_from)s AND %(day_to)s",
                           params).fetchone()
    return row["n"] if isinstance(row, dict) else row[0]
