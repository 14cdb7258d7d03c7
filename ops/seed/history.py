"""Simulated past: what a province looks like after a term of running, for demos, benchmarks and tests.

`cockpit up` gives a freshly seeded demo province this history so the cockpit's trends,
rankings and three-classroom figures are not empty on the first start; the browser
tests and benchmarks use the same. Everything is synthetic, and everything follows one
model of the school day and the school calendar (calendar_day, as the simulator and the
patrol read it):

- current state for every device, as it would be at this hour;
- daily rollups from the first day of the term (ops/seed/calendar.py `term_start`) to
  today and hourly ones for at least the last 48 hours (from a local midnight, so every
  day with hours has all of them), device and school, and every school day's sums over its
  lesson hours (the lesson-hours lens, from the same hours). Both come from one per-hour model
  and the daily figures are the aggregates of the hourly ones (sums of minutes, readings
  and use, maxima of utilisation), computed in closed form per day: where both exist, a
  day is exactly the sum of its hours. Boards are on from about 07:30 to 17:30 on school
  days only and used in lesson time, by each board's habits and its typical-use counter
  (devices/behaviour.py `habits`, `UseModel`, shared with the simulator); recorders
  record and stream the remote lessons they are the main classroom of, on school days;
  gateways carry school-day traffic in school hours and little otherwise; recorders and
  gateways drop off the network now and then, more in a few counties;
- raw board readings, one a minute, and power events of the demo school from the start
  of the previous school day, with the same counter the simulator starts from, so the
  first live reading continues the last simulated one without a counter jump;
- four weeks of remote-lesson reports matched into sessions.

Everything is set-based SQL; Python only computes the model's small tables (per day and
use class, per board) and passes them as arrays.
"""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from core.calendar import LESSON_HOURS, SchoolCalendar
from core.settings import platform_settings
from devices.behaviour import (
    ACTIVE_HOURS_UPTO,
    UNIT_SQL,
    USE_DAY_S,
    USE_SECONDS_BEFORE,
    UseModel,
    habits,
)
from ops.seed.calendar import term_start
from rollups.matching import match_sessions
from rollups.service import recount_counties

HOURLY_HOURS = 48  # hourly rollups reach back at least this far (to the local midnight before)
LESSON_REPORT_DAYS = 28  # remote-lesson events and matched sessions


def _unit(*parts: str) -> sql.Composable:
    """devices.behaviour.unit(*parts) in SQL (parts are SQL expressions)."""
    return sql.SQL(UNIT_SQL).format(sql.SQL("concat_ws(':', {})").format(sql.SQL(", ").join(map(sql.SQL, parts))))


# Current state as at `now`: most devices online, a few counties visibly worse; boards in use
# only in lesson time, recorders live only in the remote lessons they hold.
_STATE = sql.SQL("""
INSERT INTO device_state (device_id, online, status_time, last_seen, power_on, in_use, recording, streaming, last_values)
SELECT o.id, o.online, %(now)s - interval '3 hours', %(now)s - random() * interval '2 minutes', o.online,
       o.kind = 'board' AND o.online AND %(lesson_now)s AND random() < 0.6,
       o.kind = 'recorder' AND o.online AND o.live, o.kind = 'recorder' AND o.online AND o.live,
       CASE o.kind
         WHEN 'gateway' THEN jsonb_build_object('latency_ms', round((5 + random() * 40)::numeric, 1),
                                                'loss_pct', round((random() * 6)::numeric, 2), 'uplink_mbps', 1000)
         WHEN 'board' THEN jsonb_build_object('cpu_temp_c', round((45 + random() * 25)::numeric, 1),
                                              'disk_used_pct', round((30 + random() * 60)::numeric, 1))
         ELSE jsonb_build_object('storage_free_gb', round((50 + random() * 400)::numeric, 1)) END
FROM (SELECT d.id, d.kind,
             random() < CASE WHEN abs(hashtext(s.county_code)) %% 4 = 0 THEN 0.8 ELSE 0.965 END AS online,
             %(school_day)s AND EXISTS (
                 SELECT 1 FROM remote_lesson l
                 CROSS JOIN LATERAL (SELECT {luck} AS luck) k
                 WHERE l.main_device_id = d.id AND l.weekday = %(isodow)s
                   AND %(today)s::date BETWEEN l.valid_from AND l.valid_until AND k.luck < 0.9
                   AND %(local_time)s::time >= l.starts_at + interval '1 minute'
                   AND %(local_time)s::time < CASE WHEN k.luck < 0.8 THEN l.ends_at
                                                   ELSE l.starts_at + (l.ends_at - l.starts_at) / 2 END) AS live
      FROM device d JOIN school s ON s.code = d.school_code) o
""").format(luck=_unit("l.id", "to_char(%(today)s::date, 'YYYY-MM-DD')"))

# --- The model's tables -------------------------------------------------------------------------
# demo_day: every day of the rollups, whether it is a school day, and how much of it has passed:
# cut_m (rollups: up to the start of the current hour) and upto_m (raw readings: minutes up to now).
_DAYS = """
CREATE TEMP TABLE demo_day AS
SELECT d.day, d.school, CASE WHEN d.day < %(today)s THEN 1440 ELSE %(cut_m)s END AS cut_m,
       CASE WHEN d.day < %(today)s THEN 1440 ELSE %(now_m)s + 1 END AS upto_m
FROM unnest(%(days)s::date[], %(school)s::boolean[]) AS d(day, school)
"""
# demo_use: per day and use class, the class's full use before the day and on it (UseModel).
_USE = """
CREATE TEMP TABLE demo_use AS
SELECT * FROM unnest(%(day)s::date[], %(use_class)s::int[], %(full_before)s::bigint[], %(full_use)s::bigint[])
    AS u(day, use_class, full_before, full_use)
"""
# demo_board: every board's habits (devices.behaviour.habits).
_BOARDS = """
CREATE TEMP TABLE demo_board AS
SELECT * FROM unnest(%(id)s::text[], %(p)s::int[], %(use_class)s::int[], %(base)s::bigint[], %(open_m)s::int[],
                     %(close_m)s::int[]) AS b(device_id, p, use_class, base, open_m, close_m)
"""
# demo_other: per recorder and gateway and day, its outage (if any: [out_lo, out_hi) in minutes of
# the day, never a whole hour) and its traffic level; more outages in the weaker counties.
_OTHERS = sql.SQL("""
CREATE TEMP TABLE demo_other AS
SELECT o.device_id, o.kind, o.day, o.school, o.cut_m, o.uplink_mbps,
       CASE WHEN o.out THEN o.out_lo ELSE 0 END AS out_lo, CASE WHEN o.out THEN o.out_lo + o.out_len ELSE 0 END AS out_hi,
       CASE WHEN o.school THEN 0.35 + 0.25 * o.load ELSE 0.03 + 0.04 * o.load END AS level
FROM (SELECT d.id AS device_id, d.kind, x.day, x.school, x.cut_m, s.uplink_mbps,
             {outage} < CASE WHEN abs(hashtext(s.county_code)) %% 4 = 0 THEN 0.25 ELSE 0.04 END AS out,
             floor({outage_at} * 1380)::int AS out_lo, 5 + floor({outage_len} * 51)::int AS out_len, {load} AS load
      FROM device d JOIN school s ON s.code = d.school_code CROSS JOIN demo_day x
      WHERE d.kind IN ('recorder', 'gateway') AND x.cut_m > 0) o
""").format(**{name: _unit("d.id", "to_char(x.day, 'YYYY-MM-DD')", f"'{name.replace('_', '-')}'")
               for name in ("outage", "outage_at", "outage_len", "load")})
# demo_stream: what each recorder streamed (and recorded), [t0, t1) in minutes of the day: the
# remote lessons it is the main classroom of, on school days; one in ten not held, one in ten cut
# off at half time (the same luck as the lesson reports below).
_STREAMS = sql.SQL("""
CREATE TEMP TABLE demo_stream AS
SELECT l.main_device_id AS device_id, x.day, m.s0 + 1 AS t0,
       CASE WHEN k.luck < 0.8 THEN m.s1 ELSE m.s0 + (m.s1 - m.s0) / 2 END AS t1
FROM remote_lesson l
JOIN demo_day x ON x.school AND extract(isodow FROM x.day) = l.weekday AND x.day BETWEEN l.valid_from AND l.valid_until
CROSS JOIN LATERAL (SELECT (extract(epoch FROM l.starts_at) / 60)::int AS s0,
                           (extract(epoch FROM l.ends_at) / 60)::int AS s1) m
CROSS JOIN LATERAL (SELECT {luck} AS luck) k
WHERE k.luck < 0.9
""").format(luck=_unit("l.id", "to_char(x.day, 'YYYY-MM-DD')"))


def _counter(minute: str) -> sql.Composable:
    """A board's counter at a minute of the day: base + propensity * class's full use // 1000."""
    return sql.SQL("(b.base + b.p * (u.full_before + u.full_use * (%(use_before)s::int[])[({}) + 1] / {}) / 1000)"
                   ).format(sql.SQL(minute), sql.Literal(USE_DAY_S))


def _overlap(a0: str, a1: str, b0: str, b1: str) -> sql.Composable:
    """Minutes [a0, a1) and [b0, b1) have in common."""
    return sql.SQL("greatest(0, least({}, {}) - greatest({}, {}))").format(*map(sql.SQL, (a1, b1, a0, b0)))


_COLUMNS = ("bucket, device_id, kind, readings, online_minutes, powered_on_minutes, screen_on_minutes, use_min, "
            "use_max, active_use_s, recording_minutes, streaming_minutes, rx_mbps_max, utilisation_max")

# A board's hour: its readings (one a minute while on) in [lo, hi), its use the counter's
# increase from the last reading before the hour (the minute before it, or the day's start) to
# the last in it.
_BOARD_HOURS = sql.SQL("""
SELECT (x.day + make_interval(hours => h))::timestamp AT TIME ZONE %(tz)s AS bucket, b.device_id, 'board' AS kind,
       m.hi - m.lo AS readings, m.hi - m.lo AS online_minutes, m.hi - m.lo AS powered_on_minutes,
       (c.last / 60 - c.prev / 60)::int AS screen_on_minutes, c.first AS use_min, c.last AS use_max,
       c.last - c.prev AS active_use_s, NULL::int AS recording_minutes, NULL::int AS streaming_minutes,
       NULL::real AS rx_mbps_max, NULL::real AS utilisation_max
FROM demo_board b
JOIN demo_day x ON x.school AND x.day >= %(hour_day)s
JOIN demo_use u ON u.day = x.day AND u.use_class = b.use_class
CROSS JOIN LATERAL generate_series(b.open_m / 60, (least(b.close_m, x.cut_m) - 1) / 60) AS h
CROSS JOIN LATERAL (SELECT greatest(b.open_m, 60 * h) AS lo, least(b.close_m, x.cut_m, 60 * h + 60) AS hi) m
CROSS JOIN LATERAL (SELECT {first} AS first, {last} AS last, {prev} AS prev) c
WHERE m.hi > m.lo
""").format(first=_counter("m.lo"), last=_counter("m.hi - 1"), prev=_counter("greatest(60 * h - 1, 0)"))

# A board's day: the sum of its hours above, in closed form (the counter's increases telescope).
_BOARD_DAYS = sql.SQL("""
SELECT x.day::timestamp AT TIME ZONE %(tz)s AS bucket, b.device_id, 'board' AS kind,
       m.hi - m.lo AS readings, m.hi - m.lo AS online_minutes, m.hi - m.lo AS powered_on_minutes,
       (c.last / 60 - c.prev / 60)::int AS screen_on_minutes, c.first AS use_min, c.last AS use_max,
       c.last - c.prev AS active_use_s, NULL::int AS recording_minutes, NULL::int AS streaming_minutes,
       NULL::real AS rx_mbps_max, NULL::real AS utilisation_max,
       CASE WHEN c.last > c.prev THEN (%(active_hours)s::int[])[m.hi] ELSE 0 END AS active_hours
FROM demo_board b
JOIN demo_day x ON x.school
JOIN demo_use u ON u.day = x.day AND u.use_class = b.use_class
CROSS JOIN LATERAL (SELECT b.open_m AS lo, least(b.close_m, x.cut_m) AS hi) m
CROSS JOIN LATERAL (SELECT {first} AS first, {last} AS last, {prev} AS prev) c
WHERE m.hi > m.lo
""").format(first=_counter("m.lo"), last=_counter("m.hi - 1"), prev=_counter("0"))

# A recorder's or gateway's hour [lo, hi): online but for its outage; streams (less the outage);
# a gateway's peak utilisation its day's level times the hour's share (SHAPE).
_OTHER_HOURS = sql.SQL("""
SELECT (o.day + make_interval(hours => h))::timestamp AT TIME ZONE %(tz)s AS bucket, o.device_id, o.kind,
       m.hi - m.lo - {out} AS readings, m.hi - m.lo - {out} AS online_minutes, NULL::int AS powered_on_minutes,
       NULL::int AS screen_on_minutes, NULL::bigint AS use_min, NULL::bigint AS use_max, NULL::bigint AS active_use_s,
       CASE WHEN o.kind = 'recorder' THEN coalesce(st.minutes, 0) END AS recording_minutes,
       CASE WHEN o.kind = 'recorder' THEN coalesce(st.minutes, 0) END AS streaming_minutes,
       CASE WHEN o.kind = 'gateway' THEN (g.util * o.uplink_mbps)::real END AS rx_mbps_max,
       CASE WHEN o.kind = 'gateway' THEN g.util::real END AS utilisation_max
FROM demo_other o
JOIN demo_day x ON x.day = o.day AND x.day >= %(hour_day)s
CROSS JOIN LATERAL generate_series(0, (o.cut_m - 1) / 60) AS h
CROSS JOIN LATERAL (SELECT 60 * h AS lo, least(o.cut_m, 60 * h + 60) AS hi) m
CROSS JOIN LATERAL (SELECT o.level * CASE WHEN o.school THEN (%(shape_school)s::float8[])[h + 1]
                                          ELSE (%(shape_off)s::float8[])[h + 1] END AS util) g
LEFT JOIN LATERAL (SELECT sum({stream} - {stream_out})::int AS minutes FROM demo_stream s
                   WHERE s.device_id = o.device_id AND s.day = o.day) st ON o.kind = 'recorder'
""").format(out=_overlap("o.out_lo", "o.out_hi", "m.lo", "m.hi"), stream=_overlap("s.t0", "s.t1", "m.lo", "m.hi"),
           stream_out=_overlap("greatest(s.t0, o.out_lo)", "least(s.t1, o.out_hi)", "m.lo", "m.hi"))

_OTHER_DAYS = sql.SQL("""
SELECT o.day::timestamp AT TIME ZONE %(tz)s AS bucket, o.device_id, o.kind,
       o.cut_m - {out} AS readings, o.cut_m - {out} AS online_minutes, NULL::int AS powered_on_minutes,
       NULL::int AS screen_on_minutes, NULL::bigint AS use_min, NULL::bigint AS use_max, NULL::bigint AS active_use_s,
       CASE WHEN o.kind = 'recorder' THEN coalesce(st.minutes, 0) END AS recording_minutes,
       CASE WHEN o.kind = 'recorder' THEN coalesce(st.minutes, 0) END AS streaming_minutes,
       CASE WHEN o.kind = 'gateway' THEN (g.util * o.uplink_mbps)::real END AS rx_mbps_max,
       CASE WHEN o.kind = 'gateway' THEN g.util::real END AS utilisation_max, NULL::int AS active_hours
FROM demo_other o
CROSS JOIN LATERAL (SELECT o.level * CASE WHEN o.school THEN (%(peak_school)s::float8[])[(o.cut_m - 1) / 60 + 1]
                                          ELSE (%(peak_off)s::float8[])[(o.cut_m - 1) / 60 + 1] END AS util) g
LEFT JOIN LATERAL (SELECT sum({stream} - {stream_out})::int AS minutes FROM demo_stream s
                   WHERE s.device_id = o.device_id AND s.day = o.day) st ON o.kind = 'recorder'
""").format(out=_overlap("o.out_lo", "o.out_hi", "0", "o.cut_m"), stream=_overlap("s.t0", "s.t1", "0", "o.cut_m"),
           stream_out=_overlap("greatest(s.t0, o.out_lo)", "least(s.t1, o.out_hi)", "0", "o.cut_m"))

# A gateway's hourly peak as a share of its day's level: school days busy in lesson hours,
# other days a little busier in the daytime than at night. PEAK_*[h]: the highest share up to hour h.
SHAPE_SCHOOL = tuple(1.0 if h in (8, 9, 10, 11, 14, 15, 16) else 0.55 if h in (7, 12, 13, 17)
                     else 0.15 if 18 <= h <= 21 else 0.05 for h in range(24))
SHAPE_OFF = tuple(1.0 if 9 <= h <= 21 else 0.4 for h in range(24))
PEAK_SCHOOL = tuple(max(SHAPE_SCHOOL[:h + 1]) for h in range(24))
PEAK_OFF = tuple(max(SHAPE_OFF[:h + 1]) for h in range(24))

_SCHOOL_ROLLUP = """
INSERT INTO {target} (bucket, school_code, kind, devices_reporting, devices_active, online_minutes,
                      powered_on_minutes, active_use_s, recording_minutes, streaming_minutes, rx_mbps_max,
                      utilisation_max)
SELECT r.bucket, d.school_code, r.kind, count(*), count(*) FILTER (WHERE r.active_use_s > 0), sum(r.online_minutes),
       sum(r.powered_on_minutes), sum(r.active_use_s), sum(r.recording_minutes), sum(r.streaming_minutes),
       max(r.rx_mbps_max), max(r.utilisation_max)
FROM {source} r JOIN device d ON d.id = r.device_id GROUP BY 1, 2, 3
"""

# The lesson-hours lens of each day (sql/022_lesson_hours.sql): the sums of the hours above that
# are lesson hours, in closed form per block of consecutive lesson hours [k.lo, k.hi) (minutes of
# the day): a board's use telescopes from the counter before the block's first hour it was on in
# to its last reading in the block, as the hours' increases do.
_BOARD_LESSONS = sql.SQL("""
SELECT x.day::timestamp AT TIME ZONE %(tz)s AS bucket, b.device_id, 'board' AS kind,
       sum(m.hi - m.lo) AS online_minutes, sum(m.hi - m.lo) AS powered_on_minutes,
       sum({last} - {prev}) AS active_use_s, NULL::bigint AS recording_minutes, NULL::bigint AS streaming_minutes
FROM demo_board b
JOIN demo_day x ON x.school
JOIN demo_use u ON u.day = x.day AND u.use_class = b.use_class
CROSS JOIN LATERAL unnest(%(block_lo)s::int[], %(block_hi)s::int[]) AS k(lo, hi)
CROSS JOIN LATERAL (SELECT greatest(b.open_m, k.lo) AS lo, least(b.close_m, x.cut_m, k.hi) AS hi) m
WHERE m.hi > m.lo
GROUP BY 1, 2
""").format(last=_counter("m.hi - 1"), prev=_counter("greatest(60 * (m.lo / 60) - 1, 0)"))

_OTHER_LESSONS = sql.SQL("""
SELECT o.day::timestamp AT TIME ZONE %(tz)s AS bucket, o.device_id, o.kind,
       sum(m.hi - m.lo - {out}) AS online_minutes, NULL::bigint AS powered_on_minutes, NULL::bigint AS active_use_s,
       CASE WHEN o.kind = 'recorder' THEN coalesce(sum(st.minutes), 0) END AS recording_minutes,
       CASE WHEN o.kind = 'recorder' THEN coalesce(sum(st.minutes), 0) END AS streaming_minutes
FROM demo_other o
CROSS JOIN LATERAL unnest(%(block_lo)s::int[], %(block_hi)s::int[]) AS k(lo, hi)
CROSS JOIN LATERAL (SELECT k.lo AS lo, least(o.cut_m, k.hi) AS hi) m
LEFT JOIN LATERAL (SELECT sum({stream} - {stream_out})::int AS minutes FROM demo_stream s
                   WHERE s.device_id = o.device_id AND s.day = o.day) st ON o.kind = 'recorder'
WHERE m.hi > m.lo
GROUP BY o.day, o.device_id, o.kind
""").format(out=_overlap("o.out_lo", "o.out_hi", "m.lo", "m.hi"), stream=_overlap("s.t0", "s.t1", "m.lo", "m.hi"),
           stream_out=_overlap("greatest(s.t0, o.out_lo)", "least(s.t1, o.out_hi)", "m.lo", "m.hi"))


def lesson_blocks() -> tuple[list[int], list[int]]:
    """The runs of consecutive lesson hours as [start, end) minutes of the day: 480–720 and 840–1080."""
    lo: list[int] = []
    hi: list[int] = []
    for h in LESSON_HOURS:
        if hi and hi[-1] == 60 * h:
            hi[-1] += 60
        else:
            lo.append(60 * h)
            hi.append(60 * h + 60)
    return lo, hi


_SCHOOL_LESSONS = """
UPDATE school_daily x SET lesson_online_minutes = l.online_minutes, lesson_powered_on_minutes = l.powered_on_minutes,
    lesson_active_use_s = l.active_use_s, lesson_recording_minutes = l.recording_minutes,
    lesson_streaming_minutes = l.streaming_minutes
FROM (SELECT date_trunc('day', r.bucket AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s AS bucket, d.school_code, r.kind,
             sum(r.online_minutes) AS online_minutes, sum(r.powered_on_minutes) AS powered_on_minutes,
             sum(r.active_use_s) AS active_use_s, sum(r.recording_minutes) AS recording_minutes,
             sum(r.streaming_minutes) AS streaming_minutes
      FROM demo_lessons r JOIN device d ON d.id = r.device_id GROUP BY 1, 2, 3) l
WHERE x.school_code = l.school_code AND x.kind = l.kind AND x.bucket = l.bucket
"""

_TEMP_TABLES = ("demo_day", "demo_use", "demo_board", "demo_other", "demo_stream", "demo_hourly", "demo_daily",
                "demo_lessons")


def school_calendar(conn: psycopg.Connection, tz: str) -> SchoolCalendar:
    """The school calendar as stored (calendar_day), whatever the connection's row factory."""
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute("SELECT day, is_school_day FROM calendar_day").fetchall()
    return SchoolCalendar(dict(rows), ZoneInfo(tz))


def current_state(conn: psycopg.Connection, *, now: datetime | None = None, tz: str | None = None) -> None:
    """A current state for every device as at `now`: most online, a few counties visibly worse, boards
    in use only in lesson time and recorders live only in their remote lessons (school time in `tz`)."""
    now = now or datetime.now(UTC)
    cal = school_calendar(conn, tz or platform_settings().timezone)
    local = cal.local(now)
    conn.execute(_STATE, {"now": now, "lesson_now": cal.lesson_period(now) is not None,
                          "school_day": cal.is_school_day(local.date()), "today": local.date(),
                          "isodow": local.isoweekday(), "local_time": local.time().replace(tzinfo=None)})


def _hour_day(local_now: datetime, hours: int) -> date | None:
    """The first day of the hourly rollups: the local day `hours` hours ago (None: no hourly ones)."""
    return (local_now - timedelta(hours=hours)).date() if hours > 0 else None


def _model_tables(conn: psycopg.Connection, cal: SchoolCalendar, first: date, local_now: datetime) -> None:
    """The model's tables from `first` to today: demo_day, demo_use, demo_board, demo_other, demo_stream."""
    today = local_now.date()
    days = [first + timedelta(days=i) for i in range((today - first).days + 1)]
    for name in _TEMP_TABLES:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
    conn.execute(_DAYS, {"today": today, "cut_m": local_now.hour * 60,
                         "now_m": local_now.hour * 60 + local_now.minute,
                         "days": days, "school": [cal.is_school_day(d) for d in days]})
    conn.execute(_USE, UseModel(cal).day_table(first, today))
    with conn.cursor(row_factory=tuple_row) as cur:
        boards = cur.execute("SELECT d.id, s.locale FROM device d JOIN school s ON s.code = d.school_code "
                             "WHERE d.kind = 'board'").fetchall()
    table: dict[str, list] = {"id": [], "p": [], "use_class": [], "base": [], "open_m": [], "close_m": []}
    for device_id, locale in boards:
        h = habits(device_id, locale)
        for key, value in (("id", device_id), ("p", h.propensity_milli), ("use_class", h.use_class),
                           ("base", h.base_s), ("open_m", h.opens_minute), ("close_m", h.closes_minute)):
            table[key].append(value)
    conn.execute(_BOARDS, table)
    conn.execute(_OTHERS, {})  # with parameters, so its %% reaches the server as %
    conn.execute(_STREAMS, {})
    conn.execute("CREATE INDEX ON demo_use (use_class, day)")
    conn.execute("CREATE INDEX ON demo_stream (device_id, day)")
    conn.execute("ANALYZE demo_day, demo_use, demo_board, demo_other, demo_stream")


def rollups(conn: psycopg.Connection, tz: str, *, hours: int = HOURLY_HOURS, days: int | None = None,
            now: datetime | None = None) -> None:
    """Hourly rollups from the local midnight `hours` hours before `now` and daily ones for the last
    `days` days (by default from the first day of the term), device and school, up to the start of
    the current hour; days and school hours in the schools' time zone `tz`."""
    now = now or datetime.now(UTC)
    cal = school_calendar(conn, tz)
    local_now = cal.local(now)
    today = local_now.date()
    first = term_start(today) if days is None else today - timedelta(days=max(days, 1) - 1)
    hour_day = _hour_day(local_now, hours)
    if hour_day is not None:
        first = min(first, hour_day)
    if days == 0 and hour_day is None:
        return
    _model_tables(conn, cal, first, local_now)
    params = {"tz": tz, "hour_day": hour_day or today + timedelta(days=1), "use_before": list(USE_SECONDS_BEFORE),
              "active_hours": list(ACTIVE_HOURS_UPTO), "shape_school": list(SHAPE_SCHOOL),
              "shape_off": list(SHAPE_OFF), "peak_school": list(PEAK_SCHOOL), "peak_off": list(PEAK_OFF)}
    for table, parts in (("demo_hourly", (_BOARD_HOURS, _OTHER_HOURS)), ("demo_daily", (_BOARD_DAYS, _OTHER_DAYS))):
        conn.execute(sql.SQL("CREATE TEMP TABLE {} AS {} UNION ALL {}").format(sql.Identifier(table), *parts), params)
    if days == 0:
        conn.execute("TRUNCATE demo_daily")
    for grain, columns in (("hourly", _COLUMNS), ("daily", _COLUMNS + ", active_hours")):
        device, school, demo = (sql.Identifier(f"{kind}_{grain}") for kind in ("device", "school", "demo"))
        if conn.execute("SELECT relkind = 'r' FROM pg_class WHERE oid = to_regclass(%s)",
                        (f"device_{grain}",)).fetchone()[0]:
            conn.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                device, sql.SQL(columns), sql.SQL(columns), demo))
        conn.execute(sql.SQL(_SCHOOL_ROLLUP).format(target=school, source=demo))
    if days != 0:
        block_lo, block_hi = lesson_blocks()
        lessons = params | {"block_lo": block_lo, "block_hi": block_hi}
        conn.execute(sql.SQL("CREATE TEMP TABLE demo_lessons AS {} UNION ALL {}").format(
            _BOARD_LESSONS, _OTHER_LESSONS), lessons)
        conn.execute(_SCHOOL_LESSONS, lessons)
        with conn.cursor() as cur:
            recount_counties(cur, tz, everything=True)


# The demo school's boards: a reading a minute while on, from the start of the previous school day
# to now, with the model's counter (what the rollups above say of them); power events to match.
_BOARD_READINGS = sql.SQL("""
INSERT INTO board_telemetry (device_id, time, seq, power_on, screen_on, active_use_s, cpu_temp_c, cpu_load,
                             mem_load, disk_used_pct, foreground_app, os_version)
SELECT b.device_id, r.t, extract(epoch FROM r.t)::bigint, true, r.screen, r.value,
       round((46 + 4 * random() + CASE WHEN r.screen THEN 8 ELSE 0 END)::numeric, 1),
       CASE WHEN r.screen THEN 0.3 + 0.4 * random() ELSE 0.02 + 0.08 * random() END, 0.35 + 0.45 * random(),
       40 + abs(hashtext(b.device_id)) %% 30, CASE WHEN r.screen THEN '希沃白板5' ELSE '桌面' END,
       'Android 11 / Windows 10 双系统'
FROM demo_board b
JOIN device d ON d.id = b.device_id AND d.school_code = %(school)s
JOIN demo_day x ON x.school AND x.day >= %(raw_day)s
JOIN demo_use u ON u.day = x.day AND u.use_class = b.use_class
CROSS JOIN LATERAL generate_series(b.open_m, least(b.close_m, x.upto_m) - 1) AS m
CROSS JOIN LATERAL (SELECT (x.day + make_interval(mins => m))::timestamp AT TIME ZONE %(tz)s AS t,
                           {value} AS value, {before} / 60 < {value} / 60 AS screen) r
ORDER BY b.device_id, r.t
""").format(value=_counter("m"), before=_counter("m - 1"))

_POWER_EVENTS = """
INSERT INTO device_event (device_id, time, seq, type)
SELECT b.device_id, e.t, extract(epoch FROM e.t)::bigint, p.type
FROM demo_board b
JOIN device d ON d.id = b.device_id AND d.school_code = %(school)s
JOIN demo_day x ON x.school AND x.day >= %(raw_day)s
CROSS JOIN LATERAL (VALUES ('power_on', b.open_m), ('power_off', b.close_m)) AS p(type, minute)
CROSS JOIN LATERAL (SELECT (x.day + make_interval(mins => p.minute))::timestamp AT TIME ZONE %(tz)s AS t) e
WHERE e.t <= %(now)s
ON CONFLICT DO NOTHING
"""

# Four weeks of remote lessons as the classrooms reported them: most held, some cut short or
# missed, by the same luck the recorders' rollups stream by.
_SLOTS = sql.SQL("""
CREATE TEMP TABLE demo_slot AS
SELECT l.id, l.main_device_id, (d.day + l.starts_at) AT TIME ZONE %(tz)s AS s0,
       (d.day + l.ends_at) AT TIME ZONE %(tz)s AS s1, {luck} AS luck
FROM remote_lesson l
JOIN generate_series(%(today)s::date - %(days)s + 1, %(today)s::date, interval '1 day') AS g
  ON extract(isodow FROM g) = l.weekday
CROSS JOIN LATERAL (SELECT g::date AS day) d
LEFT JOIN calendar_day c ON c.day = d.day
WHERE d.day BETWEEN l.valid_from AND l.valid_until AND (d.day + l.starts_at) AT TIME ZONE %(tz)s < %(now)s
  AND coalesce(c.is_school_day, extract(isodow FROM d.day) <= 5)
""").format(luck=_unit("l.id", "to_char(d.day, 'YYYY-MM-DD')"))

_LESSON_EVENTS = """
INSERT INTO device_event (device_id, time, seq, type, lesson_id, lesson_role)
SELECT main_device_id, s0 + interval '1 minute', 1, 'stream_start', id, 'main' FROM demo_slot WHERE luck < 0.9
UNION ALL
SELECT main_device_id, CASE WHEN luck < 0.8 THEN s1 ELSE s0 + (s1 - s0) / 2 END, 2, 'stream_stop', id, 'main'
FROM demo_slot WHERE luck < 0.9 AND (s1 < %(now)s OR luck >= 0.8)
UNION ALL
SELECT r.device_id, s0 + interval '2 minutes', 3, 'lesson_start', sl.id, 'receiving'
FROM demo_slot sl JOIN remote_lesson_receiver r ON r.lesson_id = sl.id WHERE sl.luck < 0.9 AND random() < 0.92
ON CONFLICT DO NOTHING
"""


def demo_school(url: str) -> str:
    """The school of the demo user 'school' (in 曾都区), whose boards have raw readings."""
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT scope_code FROM app_user WHERE username = 'school'").fetchone()[0]


def raw_from(cal: SchoolCalendar, today: date, hour_day: date | None) -> date:
    """The first day of the demo school's raw readings: the previous school day (within two months),
    or the first day of the hourly rollups if that is earlier."""
    day = today - timedelta(days=1)
    while not cal.is_school_day(day) and day > today - timedelta(days=62):
        day -= timedelta(days=1)
    return min(day, hour_day) if hour_day else day


def add_history(url: str, tz: str | None = None, *, now: datetime | None = None) -> None:
    """Give a freshly seeded province current state, rollups, raw readings and lesson reports as at
    `now` (by default the present; days in `tz`, by default the platform's COCKPIT_TIMEZONE)."""
    tz = tz or platform_settings().timezone
    now = now or datetime.now(UTC)
    school = demo_school(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT setseed(0.2026)")
        current_state(conn, now=now, tz=tz)
        rollups(conn, tz, now=now)  # leaves the model's tables (demo_*) for what follows
        cal = school_calendar(conn, tz)
        local_now = cal.local(now)
        today = local_now.date()
        params = {"school": school, "tz": tz, "now": now, "use_before": list(USE_SECONDS_BEFORE),
                  "raw_day": raw_from(cal, today, _hour_day(local_now, HOURLY_HOURS))}
        conn.execute(_BOARD_READINGS, params)
        conn.execute(_POWER_EVENTS, params)
        conn.execute("DROP TABLE IF EXISTS demo_slot")
        conn.execute(_SLOTS, {"tz": tz, "now": now, "today": today, "days": LESSON_REPORT_DAYS})
        conn.execute(_LESSON_EVENTS, {"now": now})
        match_sessions(conn, today - timedelta(days=LESSON_REPORT_DAYS - 1), today, now)
        conn.execute("ANALYZE board_telemetry, device_event, device_hourly, device_daily, school_hourly, school_daily")

