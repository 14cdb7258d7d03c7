"""Simulated past: what a province looks like after weeks of running, for demos, benchmarks and tests.

`cockpit up` gives a freshly seeded demo province this history so the cockpit's trends,
rankings and three-classroom figures are not empty on the first start; the browser
tests and benchmarks use the same. Everything is synthetic and marked as such in the
data only by its shape: current state for every device, 48 hours of hourly and 30 days
of daily rollups shaped like a school week, a day of raw readings and events for one
school, and four weeks of remote-lesson reports matched into sessions.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from core.settings import platform_settings
from rollups.matching import match_sessions

# Current state: most devices online, a few counties visibly worse, boards in use in school hours.
_STATE = """
INSERT INTO device_state (device_id, online, status_time, last_seen, power_on, in_use, recording, streaming, last_values)
SELECT o.id, o.online, now() - interval '3 hours', now() - random() * interval '2 minutes', o.online,
       o.kind = 'board' AND o.online AND random() < 0.55,
       o.kind = 'recorder' AND o.online AND random() < 0.5, o.kind = 'recorder' AND o.online AND random() < 0.35,
       CASE o.kind
         WHEN 'gateway' THEN jsonb_build_object('latency_ms', round((5 + random() * 40)::numeric, 1),
                                                'loss_pct', round((random() * 6)::numeric, 2), 'uplink_mbps', 1000)
         WHEN 'board' THEN jsonb_build_object('cpu_temp_c', round((45 + random() * 25)::numeric, 1),
                                              'disk_used_pct', round((30 + random() * 60)::numeric, 1))
         ELSE jsonb_build_object('storage_free_gb', round((50 + random() * 400)::numeric, 1)) END
FROM (SELECT d.id, d.kind,
             random() < CASE WHEN abs(hashtext(s.county_code)) %% 4 = 0 THEN 0.8 ELSE 0.965 END AS online
      FROM device d JOIN school s ON s.code = d.school_code) o
"""

# Two days of hourly and thirty of daily device rollups, shaped like a school week (boards off at
# at night), made in temporary tables: they go into device_hourly/_daily where those are tables
# (with TimescaleDB they are views over continuous aggregates), and into the school rollups.
_HOURLY = """
CREATE TEMP TABLE demo_hourly AS
SELECT h AS bucket, d.id AS device_id, d.kind, 60 AS readings, m.online AS online_minutes,
       CASE WHEN d.kind = 'board' THEN m.online END AS powered_on_minutes,
       CASE WHEN d.kind = 'board' THEN (m.online * random() * 40)::bigint END AS active_use_s,
       CASE WHEN d.kind = 'recorder' THEN (m.day * random() * 40)::int END AS recording_minutes,
       CASE WHEN d.kind = 'recorder' THEN (m.day * random() * 25)::int END AS streaming_minutes,
       CASE WHEN d.kind = 'gateway' THEN 0.2 + m.day * random() * 0.6 END AS utilisation_max
FROM device d
CROSS JOIN generate_series(date_trunc('hour', now()) - make_interval(hours => %(hours)s), date_trunc('hour', now()),
                           '1 hour') h
CROSS JOIN LATERAL (SELECT extract(hour FROM h AT TIME ZONE %(tz)s) BETWEEN 7 AND 17 AS school) sh
CROSS JOIN LATERAL (SELECT sh.school::int AS day,
    CASE WHEN d.kind <> 'board' THEN 54 + (random() * 6)::int
         WHEN sh.school THEN 45 + (random() * 15)::int ELSE (random() * 8)::int END AS online) m
"""

_DAILY = """
CREATE TEMP TABLE demo_daily AS
SELECT (date_trunc('day', now() AT TIME ZONE %(tz)s) - make_interval(days => g)) AT TIME ZONE %(tz)s
           AS bucket,
       d.id AS device_id, d.kind, 1440 AS readings, (1250 + random() * 180)::int AS online_minutes,
       CASE WHEN d.kind = 'board' THEN (400 + random() * 200)::int END AS powered_on_minutes,
       CASE WHEN d.kind = 'board' THEN (random() * 14400)::bigint END AS active_use_s,
       CASE WHEN d.kind = 'recorder' THEN (random() * 200)::int END AS recording_minutes,
       CASE WHEN d.kind = 'recorder' THEN (random() * 120)::int END AS streaming_minutes,
       CASE WHEN d.kind = 'gateway' THEN random() END AS utilisation_max
FROM device d CROSS JOIN generate_series(0, %(days)s - 1) AS g
"""

_ROLLUP_COLUMNS = ("bucket, device_id, kind, readings, online_minutes, powered_on_minutes, active_use_s, "
                   "recording_minutes, streaming_minutes, utilisation_max")

_SCHOOL_ROLLUP = """
INSERT INTO {target} (bucket, school_code, kind, devices_reporting, devices_active, online_minutes,
                      powered_on_minutes, active_use_s, recording_minutes, streaming_minutes, utilisation_max)
SELECT r.bucket, d.school_code, r.kind, count(*), count(*) FILTER (WHERE r.active_use_s > 0), sum(r.online_minutes),
       sum(r.powered_on_minutes), sum(r.active_use_s), sum(r.recording_minutes), sum(r.streaming_minutes),
       max(r.utilisation_max)
FROM {source} r JOIN device d ON d.id = r.device_id GROUP BY 1, 2, 3
"""


def current_state(conn: psycopg.Connection) -> None:
    """A current state for every device: most online, a few counties visibly worse."""
    conn.execute(_STATE, {})  # with parameters, so its %% reaches the server as %


def rollups(conn: psycopg.Connection, tz: str, *, hours: int = 48, days: int = 30) -> None:
    """Hourly rollups for the last `hours` and daily ones for the last `days`, device and school;
    school hours and days in the schools' time zone `tz`."""
    conn.execute(_HOURLY, {"hours": hours, "tz": tz})
    conn.execute(_DAILY, {"days": days, "tz": tz})
    for grain in ("hourly", "daily"):
        device, school, demo = (sql.Identifier(f"{kind}_{grain}") for kind in ("device", "school", "demo"))
        if conn.execute("SELECT relkind = 'r' FROM pg_class WHERE oid = to_regclass(%s)",
                        (f"device_{grain}",)).fetchone()[0]:
            conn.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                device, sql.SQL(_ROLLUP_COLUMNS), sql.SQL(_ROLLUP_COLUMNS), demo))
        conn.execute(sql.SQL(_SCHOOL_ROLLUP).format(target=school, source=demo))


# Raw readings and events of one school's devices over a day, for the device page.
_BOARD_READINGS = """
INSERT INTO board_telemetry (device_id, time, seq, power_on, screen_on, active_use_s, cpu_temp_c, cpu_load,
                             mem_load, disk_used_pct, foreground_app, os_version)
SELECT d.id, t, extract(epoch FROM t)::bigint, true, random() < 0.7, (extract(epoch FROM t - now()) + 86400)::bigint / 3,
       48 + random() * 20, random(), 0.3 + random() * 0.5, 62 + random(), 'whiteboard', 'Android 11'
FROM device d CROSS JOIN generate_series(now() - interval '24 hours', now(), interval '10 minutes') t
WHERE d.school_code = %(school)s AND d.kind = 'board'
"""

_EVENTS = """
INSERT INTO device_event (device_id, time, seq, type, detail)
SELECT d.id, now() - make_interval(mins => g * 37), g, (ARRAY['power_on', 'lesson_start', 'error'])[1 + g %% 3],
       CASE WHEN g %% 3 = 2 THEN jsonb_build_object('code', 'E' || (100 + g)) ELSE '{}'::jsonb END
FROM device d CROSS JOIN generate_series(1, 6) g
WHERE d.school_code = %(school)s AND d.kind = 'board'
"""

# Four weeks of remote lessons as the classrooms reported them: most held, some cut short or missed.
_SLOTS = """
CREATE TEMP TABLE demo_slot AS
SELECT l.id, l.main_device_id, (d.day + l.starts_at) AT TIME ZONE %(tz)s AS s0,
       (d.day + l.ends_at) AT TIME ZONE %(tz)s AS s1, random() AS luck
FROM remote_lesson l
JOIN generate_series((now() AT TIME ZONE %(tz)s)::date - 27, (now() AT TIME ZONE %(tz)s)::date,
                     interval '1 day') AS g ON extract(isodow FROM g) = l.weekday
CROSS JOIN LATERAL (SELECT g::date AS day) d
WHERE d.day BETWEEN l.valid_from AND l.valid_until AND (d.day + l.starts_at) AT TIME ZONE %(tz)s < now()
"""

_LESSON_EVENTS = """
INSERT INTO device_event (device_id, time, seq, type, lesson_id, lesson_role)
SELECT main_device_id, s0 + interval '1 minute', 1, 'stream_start', id, 'main' FROM demo_slot WHERE luck < 0.9
UNION ALL
SELECT main_device_id, CASE WHEN luck < 0.8 THEN s1 ELSE s0 + (s1 - s0) / 2 END, 2, 'stream_stop', id, 'main'
FROM demo_slot WHERE luck < 0.9 AND (s1 < now() OR luck >= 0.8)
UNION ALL
SELECT r.device_id, s0 + interval '2 minutes', 3, 'lesson_start', sl.id, 'receiving'
FROM demo_slot sl JOIN remote_lesson_receiver r ON r.lesson_id = sl.id WHERE sl.luck < 0.9 AND random() < 0.92
ON CONFLICT DO NOTHING
"""

def demo_school(url: str) -> str:
    """The school of the demo user 'school' (in 曾都区), whose devices have a day of raw readings."""
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT scope_code FROM app_user WHERE username = 'school'").fetchone()[0]


def add_history(url: str, tz: str | None = None) -> None:
    """Give a freshly seeded province current state, rollups, a day of readings and lesson reports
    (days in `tz`, by default the platform's COCKPIT_TIMEZONE)."""
    tz = tz or platform_settings().timezone
    school = demo_school(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT setseed(0.2026)")
        current_state(conn)
        rollups(conn, tz)
        conn.execute(_BOARD_READINGS, {"school": school})
        conn.execute(_EVENTS, {"school": school})
        conn.execute(_SLOTS, {"tz": tz})
        conn.execute(_LESSON_EVENTS)
        today = datetime.now(ZoneInfo(tz)).date()
        match_sessions(conn, today - timedelta(days=27), today, datetime.now(UTC))
