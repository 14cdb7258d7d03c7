"""The rollups service: incremental hourly and daily rollups, the per-school current state and
the three classrooms' session matching, on a schedule (`cockpit rollups`).

Each refresh takes the telemetry received since the last one (by the database's own
receive time, minus a safety margin for transactions still in flight), finds the
(device, hour) buckets it touches, and recomputes those buckets whole — then the days
and the schools they belong to. Everything is set-based SQL in one transaction.

With TimescaleDB's continuous aggregates (device_hourly is then a view, see
sql/004_rollups.sql) the device buckets are the caggs' to compute: a refresh calls
refresh_continuous_aggregate for the touched window, then recomputes the schools.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from core.calendar import LESSON_HOURS
from core.db import open_pool
from core.process import run_until_shutdown
from core.settings import PlatformSettings, platform_settings
from rollups import school_now
from rollups.matching import match_sessions

log = logging.getLogger(__name__)

MARGIN = "30 seconds"  # a batch commits within seconds of its receive time
_LOCK = 742_003

_TOUCHED_BUCKETS = """
SELECT DISTINCT device_id, date_trunc('hour', time) AS bucket FROM (
    SELECT device_id, time FROM board_telemetry
    WHERE received_at > %(since)s AND received_at <= %(upto)s AND time >= %(horizon)s
    UNION ALL
    SELECT device_id, time FROM recorder_telemetry
    WHERE received_at > %(since)s AND received_at <= %(upto)s AND time >= %(horizon)s
    UNION ALL
    SELECT device_id, time FROM gateway_telemetry
    WHERE received_at > %(since)s AND received_at <= %(upto)s AND time >= %(horizon)s) raw
"""
_TOUCHED = "CREATE TEMP TABLE touched ON COMMIT DROP AS" + _TOUCHED_BUCKETS

_UPSERT = """
ON CONFLICT (device_id, bucket) DO UPDATE SET {sets}
"""

_BOARD = """
INSERT INTO device_hourly AS h (bucket, device_id, kind, readings, online_minutes, powered_on_minutes,
                                screen_on_minutes, use_min, use_max, active_use_s, cpu_temp_max, disk_used_max)
SELECT t.bucket, t.device_id, 'board', count(*), count(DISTINCT date_trunc('minute', r.time)),
       count(DISTINCT date_trunc('minute', r.time)) FILTER (WHERE r.power_on),
       count(DISTINCT date_trunc('minute', r.time)) FILTER (WHERE r.screen_on),
       min(r.active_use_s), max(r.active_use_s), least(coalesce(sum(r.use_increase_s), 0), 3600), max(r.cpu_temp_c),
       max(r.disk_used_pct)
FROM touched t JOIN board_telemetry r
  ON r.device_id = t.device_id AND r.time >= t.bucket AND r.time < t.bucket + interval '1 hour'
GROUP BY 1, 2
"""

_RECORDER = """
INSERT INTO device_hourly AS h (bucket, device_id, kind, readings, online_minutes, recording_minutes,
                                streaming_minutes, frames_min, frames_max, dropped_frames_increase,
                                storage_free_min_gb, cameras_offline_max)
SELECT t.bucket, t.device_id, 'recorder', count(*), count(DISTINCT date_trunc('minute', r.time)),
       count(DISTINCT date_trunc('minute', r.time)) FILTER (WHERE r.recording),
       count(DISTINCT date_trunc('minute', r.time)) FILTER (WHERE r.streaming),
       min(r.dropped_frames), max(r.dropped_frames), coalesce(sum(r.frames_increase), 0), min(r.storage_free_gb),
       max(r.cameras_total - r.cameras_online)
FROM touched t JOIN recorder_telemetry r
  ON r.device_id = t.device_id AND r.time >= t.bucket AND r.time < t.bucket + interval '1 hour'
GROUP BY 1, 2
"""

_GATEWAY = """
INSERT INTO device_hourly AS h (bucket, device_id, kind, readings, online_minutes, rx_mbps_avg, rx_mbps_max,
                                utilisation_max, latency_avg, loss_avg, aps_offline_max, latency_readings,
                                loss_readings)
SELECT t.bucket, t.device_id, 'gateway', count(*), count(DISTINCT date_trunc('minute', r.time)),
       avg(r.rx_mbps), max(r.rx_mbps), max(r.rx_mbps / nullif(r.uplink_mbps, 0)), avg(r.latency_ms),
       avg(r.loss_pct), max(r.aps_total - r.aps_online), count(r.latency_ms), count(r.loss_pct)
FROM touched t JOIN gateway_telemetry r
  ON r.device_id = t.device_id AND r.time >= t.bucket AND r.time < t.bucket + interval '1 hour'
GROUP BY 1, 2
"""

# A counter's increase in an hour is the sum of what its readings added, each judged at ingest
# against the device's previous reading (sql/020_counter_increase.sql): no bucket edge loses any,
# no reset or jump adds more than the time that passed, an hour counts at most an hour of use (a
# reading after a gap may carry the gap's), and a day is the sum of its hours.
_HOURLY_COLUMNS = ("readings", "online_minutes", "powered_on_minutes", "screen_on_minutes", "use_min", "use_max",
                   "active_use_s", "dropped_frames_increase", "cpu_temp_max", "disk_used_max", "recording_minutes", "streaming_minutes", "frames_min",
                   "frames_max", "storage_free_min_gb", "cameras_offline_max", "rx_mbps_avg", "rx_mbps_max",
                   "utilisation_max", "latency_avg", "loss_avg", "aps_offline_max")

_DAY = "(date_trunc('day', {b} AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s)"

_DAILY = """
CREATE TEMP TABLE touched_days ON COMMIT DROP AS
SELECT DISTINCT device_id, {day} AS day FROM touched
"""

_DAILY_UPSERT = """
INSERT INTO device_daily AS d (bucket, device_id, kind, readings, online_minutes, powered_on_minutes,
    screen_on_minutes, use_min, use_max, active_use_s, active_hours, cpu_temp_max, disk_used_max,
    recording_minutes, streaming_minutes, frames_min, frames_max, dropped_frames_increase, storage_free_min_gb,
    cameras_offline_max, rx_mbps_avg, rx_mbps_max, utilisation_max, latency_avg, loss_avg, aps_offline_max)
SELECT td.day, h.device_id, min(h.kind), sum(h.readings), sum(h.online_minutes), sum(h.powered_on_minutes),
    sum(h.screen_on_minutes), min(h.use_min), max(h.use_max), sum(h.active_use_s),
    CASE WHEN min(h.kind) = 'board' THEN count(*) FILTER (WHERE h.active_use_s > 0) END, max(h.cpu_temp_max), max(h.disk_used_max),
    sum(h.recording_minutes), sum(h.streaming_minutes), min(h.frames_min), max(h.frames_max),
    sum(h.dropped_frames_increase), min(h.storage_free_min_gb), max(h.cameras_offline_max),
    sum(h.rx_mbps_avg * h.readings) / nullif(sum(h.readings) FILTER (WHERE h.rx_mbps_avg IS NOT NULL), 0),
    max(h.rx_mbps_max), max(h.utilisation_max),
    sum(h.latency_avg * coalesce(h.latency_readings, h.readings))
        / nullif(sum(coalesce(h.latency_readings, h.readings)) FILTER (WHERE h.latency_avg IS NOT NULL), 0),
    sum(h.loss_avg * coalesce(h.loss_readings, h.readings))
        / nullif(sum(coalesce(h.loss_readings, h.readings)) FILTER (WHERE h.loss_avg IS NOT NULL), 0),
    max(h.aps_offline_max)
FROM touched_days td JOIN device_hourly h
  ON h.device_id = td.device_id AND h.bucket >= td.day AND h.bucket < td.day + interval '1 day'
GROUP BY 1, 2
ON CONFLICT (device_id, bucket) DO UPDATE SET {sets}
"""

_SCHOOLS = """
INSERT INTO {target} AS x (bucket, school_code, kind, devices_reporting, devices_active, online_minutes,
    powered_on_minutes, active_use_s, recording_minutes, streaming_minutes, rx_mbps_max, utilisation_max,
    latency_avg, loss_avg)
SELECT r.bucket, d.school_code, r.kind, count(*), count(*) FILTER (WHERE r.active_use_s > 0),
    sum(r.online_minutes), sum(r.powered_on_minutes), sum(r.active_use_s), sum(r.recording_minutes),
    sum(r.streaming_minutes), max(r.rx_mbps_max), max(r.utilisation_max), avg(r.latency_avg), avg(r.loss_avg)
FROM {source} r JOIN device d ON d.id = r.device_id
WHERE (d.school_code, r.bucket) IN (SELECT dd.school_code, {keys} FROM {touched} k JOIN device dd ON dd.id = k.device_id)
      {in_service}
GROUP BY 1, 2, 3
ON CONFLICT (school_code, kind, bucket) DO UPDATE SET
    devices_reporting = EXCLUDED.devices_reporting, devices_active = EXCLUDED.devices_active,
    online_minutes = EXCLUDED.online_minutes, powered_on_minutes = EXCLUDED.powered_on_minutes,
    active_use_s = EXCLUDED.active_use_s, recording_minutes = EXCLUDED.recording_minutes,
    streaming_minutes = EXCLUDED.streaming_minutes, rx_mbps_max = EXCLUDED.rx_mbps_max,
    utilisation_max = EXCLUDED.utilisation_max, latency_avg = EXCLUDED.latency_avg, loss_avg = EXCLUDED.loss_avg
"""

# A school hour counts a device's minutes from the hour it came into service (in_service_since,
# sql/023_county_cube.sql): readings from before then are not online time of the school, so no
# figure ever counts more online device-minutes than in-service ones.
_IN_SERVICE = "AND r.bucket >= in_service_since(d.registered_at, d.installed_on, %(tz)s)"

# From each touched school day's hours: its sums of minutes and use (so the day counts only
# in-service hours, as its hours do: a school's day is the sum of its hours) and its sums over its
# lesson hours, the lesson-hours lens (sql/022_lesson_hours.sql; core/calendar.py LESSON_HOURS,
# local hours). A day without such hours gets 0 online minutes and NULL sums, so a stale sum never
# survives.
_FROM_HOURS = """
WITH days AS (SELECT DISTINCT dd.school_code, {key} AS day FROM {touched} k JOIN device dd ON dd.id = k.device_id),
lens AS (SELECT x.school_code, x.kind, x.bucket, coalesce(sum(h.online_minutes), 0) AS all_online_minutes,
                sum(h.powered_on_minutes) AS all_powered_on_minutes, sum(h.active_use_s) AS all_active_use_s,
                sum(h.recording_minutes) AS all_recording_minutes, sum(h.streaming_minutes) AS all_streaming_minutes,
                sum(h.online_minutes) FILTER (WHERE h.lesson) AS online_minutes,
                sum(h.powered_on_minutes) FILTER (WHERE h.lesson) AS powered_on_minutes,
                sum(h.active_use_s) FILTER (WHERE h.lesson) AS active_use_s,
                sum(h.recording_minutes) FILTER (WHERE h.lesson) AS recording_minutes,
                sum(h.streaming_minutes) FILTER (WHERE h.lesson) AS streaming_minutes
         FROM school_daily x JOIN days t ON x.school_code = t.school_code AND x.bucket = t.day
         LEFT JOIN LATERAL (SELECT h.*, extract(hour FROM h.bucket AT TIME ZONE %(tz)s)::int = ANY(%(lesson_hours)s)
                                        AS lesson
                            FROM school_hourly h WHERE h.school_code = x.school_code AND h.kind = x.kind
                            AND h.bucket >= x.bucket AND h.bucket < x.bucket + interval '1 day') h ON true
         GROUP BY 1, 2, 3)
UPDATE school_daily x SET online_minutes = l.all_online_minutes, powered_on_minutes = l.all_powered_on_minutes,
    active_use_s = l.all_active_use_s, recording_minutes = l.all_recording_minutes,
    streaming_minutes = l.all_streaming_minutes, lesson_online_minutes = l.online_minutes,
    lesson_powered_on_minutes = l.powered_on_minutes, lesson_active_use_s = l.active_use_s,
    lesson_recording_minutes = l.recording_minutes, lesson_streaming_minutes = l.streaming_minutes
FROM lens l WHERE x.school_code = l.school_code AND x.kind = l.kind AND x.bucket = l.bucket
"""

# The counties' running totals (sql/023_county_cube.sql) from the earliest day touched in each.
_COUNTIES = """
SELECT county_cum_refresh(array_agg(county_code), day, %(tz)s) FROM (
    SELECT s.county_code, min(k.day) AS day FROM touched_days k JOIN device d ON d.id = k.device_id
    JOIN school s ON s.code = d.school_code GROUP BY 1) c
GROUP BY day
"""
# from_date as text: it may be -infinity, which no Python date holds
_STALE = "SELECT from_date::text AS from_date, array_agg(county_code) AS counties FROM county_cum_stale GROUP BY 1"
_RECOUNT = "SELECT county_cum_refresh(%(counties)s, %(from_date)s::date::timestamp AT TIME ZONE %(tz)s, %(tz)s)"
_RECOUNTED = "DELETE FROM county_cum_stale WHERE county_code = ANY(%(counties)s) AND from_date >= %(from_date)s::date"


_STALE_SCHOOLS = "SELECT from_date::text AS from_date, array_agg(school_code) AS schools FROM school_rollup_stale GROUP BY 1"
# From the local midnight of from_date, which may be -infinity: kept in SQL, as no Python date holds it.
_REBUILD = (
    "DELETE FROM school_hourly WHERE school_code = ANY(%(schools)s) "
    "AND bucket >= %(from_date)s::date::timestamp AT TIME ZONE %(tz)s",
    "DELETE FROM school_daily WHERE school_code = ANY(%(schools)s) "
    "AND bucket >= %(from_date)s::date::timestamp AT TIME ZONE %(tz)s",
    "CREATE TEMP TABLE rebuild_hours AS SELECT h.device_id, h.bucket FROM device_hourly h JOIN device d "
    "ON d.id = h.device_id WHERE d.school_code = ANY(%(schools)s) "
    "AND h.bucket >= %(from_date)s::date::timestamp AT TIME ZONE %(tz)s",
    "CREATE TEMP TABLE rebuild_days AS SELECT h.device_id, h.bucket AS day FROM device_daily h JOIN device d "
    "ON d.id = h.device_id WHERE d.school_code = ANY(%(schools)s) "
    "AND h.bucket >= %(from_date)s::date::timestamp AT TIME ZONE %(tz)s",
)
_REBUILT = ("SELECT county_cum_mark(ARRAY(SELECT DISTINCT county_code FROM school WHERE code = ANY(%(schools)s)), "
            "%(from_date)s::date)")


def rebuild_stale_schools(cur, tz: str) -> int:
    """Recompute the school rollups a registry change made stale (school_rollup_stale, sql/026) from the
    device rollups, and mark their counties' totals for recounting; how many schools."""
    rebuilt = 0
    for row in cur.execute(_STALE_SCHOOLS).fetchall():
        args = {"schools": row["schools"] if isinstance(row, dict) else row[1],
                "from_date": row["from_date"] if isinstance(row, dict) else row[0], "tz": tz,
                "lesson_hours": list(LESSON_HOURS)}
        for statement in _REBUILD:
            cur.execute(statement, args)
        cur.execute(_SCHOOLS.format(target="school_hourly", source="device_hourly", keys="k.bucket",
                                    touched="rebuild_hours", in_service=_IN_SERVICE), args)
        cur.execute(_SCHOOLS.format(target="school_daily", source="device_daily", keys="k.day",
                                    touched="rebuild_days", in_service=""), args)
        cur.execute(_FROM_HOURS.format(key="k.day", touched="rebuild_days"), args)
        cur.execute("DROP TABLE rebuild_hours, rebuild_days")
        cur.execute(_REBUILT, args)
        cur.execute("DELETE FROM school_rollup_stale WHERE school_code = ANY(%(schools)s) "
                    "AND from_date >= %(from_date)s::date", args)
        rebuilt += len(args["schools"])
    return rebuilt


def recount_counties(cur, tz: str, *, everything: bool = False) -> int:
    """Recompute the county totals something else made stale (a school moved, the calendar changed),
    or, with `everything`, every county's from the start (after a bulk load); how many counties."""
    if everything:
        cur.execute("SELECT county_cum_mark(ARRAY(SELECT code FROM county), '-infinity')")
    counted = 0
    for row in cur.execute(_STALE).fetchall():
        args = {"counties": row["counties"] if isinstance(row, dict) else row[1],
                "from_date": row["from_date"] if isinstance(row, dict) else row[0], "tz": tz}
        cur.execute(_RECOUNT, args)
        cur.execute(_RECOUNTED, args)
        counted += len(args["counties"])
    return counted


def _sets(columns) -> str:
    return ", ".join(f"{c} = EXCLUDED.{c}" for c in columns)


def _daily_sql() -> tuple[str, str]:
    cols = (*_HOURLY_COLUMNS, "active_hours", "kind")
    return _DAILY.format(day=_DAY.format(b="bucket")), _DAILY_UPSERT.format(sets=_sets(cols))


_CONTINUOUS = "SELECT relkind = 'v' AS continuous FROM pg_class WHERE oid = to_regclass('device_hourly')"
_WATERMARK = """
SELECT (SELECT received_upto FROM rollup_watermark WHERE name = 'telemetry') AS since,
       upto, upto - %(keep)s::interval AS horizon
FROM (SELECT coalesce(%(now)s::timestamptz, now()) - %(margin)s::interval AS upto) u
"""
_SAVE_WATERMARK = """
INSERT INTO rollup_watermark (name, received_upto) VALUES ('telemetry', %(upto)s)
ON CONFLICT (name) DO UPDATE SET received_upto = EXCLUDED.received_upto
"""
# Raw chunks older than this are compressed (TimescaleDB): the scan for new rows stays
# out of them, so telemetry arriving more than a week late is not rolled up there.
COMPRESS_AFTER = "7 days"

_WINDOW = """
SELECT min(bucket) AS hour_from, max(bucket) + interval '1 hour' AS hour_to,
       date_trunc('day', min(bucket) AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s AS day_from,
       (date_trunc('day', max(bucket) AT TIME ZONE %(tz)s) + interval '1 day') AT TIME ZONE %(tz)s AS day_to
FROM (""" + _TOUCHED_BUCKETS + ") t"
_REFRESH_CAGG = "CALL refresh_continuous_aggregate(%s::regclass, %s::timestamptz, %s::timestamptz)"
HOURLY_CAGGS = ("board_hourly_cagg", "recorder_hourly_cagg", "gateway_hourly_cagg", "board_use_hourly_cagg",
                "recorder_frames_hourly_cagg")
DAILY_CAGGS = ("board_daily_cagg", "recorder_daily_cagg", "gateway_daily_cagg", "board_use_daily_cagg",
               "recorder_frames_daily_cagg")


def continuous(conn: psycopg.Connection) -> bool:
    """True when device_hourly is a view over TimescaleDB continuous aggregates."""
    # in a transaction of its own: a pooled connection must be idle again afterwards, for the
    # refresh of continuous aggregates switches it to autocommit
    with conn.transaction():
        row = conn.execute(_CONTINUOUS).fetchone()
    return bool(row and (row["continuous"] if isinstance(row, dict) else row[0]))


def refresh(conn: psycopg.Connection, tz: str | None = None, margin: str = MARGIN, *,
            now: datetime | None = None) -> dict:
    """Roll up everything received up to `now` (the database's clock) since the last refresh; days
    in the schools' time zone `tz` (by default COCKPIT_TIMEZONE)."""
    tz = tz or platform_settings().timezone
    if continuous(conn):
        return _refresh_continuous(conn, {"tz": tz, "margin": margin, "now": now, "keep": COMPRESS_AFTER})
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        if not cur.execute("SELECT pg_try_advisory_xact_lock(%s) AS ok", (_LOCK,)).fetchone()["ok"]:
            return {"skipped": "another refresh is running"}
        params = _window_params(cur, {"tz": tz, "margin": margin, "now": now, "keep": None})
        cur.execute(_TOUCHED, params)
        touched = cur.execute("SELECT count(*) AS n FROM touched").fetchone()["n"]
        if touched:
            for statement, columns in ((_BOARD, _HOURLY_COLUMNS), (_RECORDER, _HOURLY_COLUMNS),
                                       (_GATEWAY, (*_HOURLY_COLUMNS, "latency_readings", "loss_readings"))):
                cur.execute(statement + _UPSERT.format(sets=_sets(columns)), params)
            _days_and_schools(cur, params, _daily_sql())
        rebuild_stale_schools(cur, tz)
        recount_counties(cur, tz)
        cur.execute(_SAVE_WATERMARK, params)
    return {"device_hours": touched, "upto": params["upto"]}


def _window_params(cur, args: dict) -> dict:
    """The rows to roll up: received after the watermark, up to `upto`, with a time after `horizon`."""
    row = cur.execute(_WATERMARK, args).fetchone()
    return {**args, **row, "since": row["since"] or "-infinity", "horizon": row["horizon"] or "-infinity"}


def _days_and_schools(cur, params: dict, daily: Sequence[str]) -> None:
    """From the touched hours: the touched days (and the device days, if given), then the schools."""
    cur.execute(daily[0], params)
    for statement in daily[1:]:
        cur.execute(statement, params)
    cur.execute(_SCHOOLS.format(target="school_hourly", source="device_hourly", keys="k.bucket",
                                touched="touched", in_service=_IN_SERVICE), params)
    cur.execute(_SCHOOLS.format(target="school_daily", source="device_daily", keys="k.day",
                                touched="touched_days", in_service=""), params)
    cur.execute(_FROM_HOURS.format(key="k.day", touched="touched_days"), params | {"lesson_hours": list(LESSON_HOURS)})
    cur.execute(_COUNTIES, params)


def _refresh_continuous(conn: psycopg.Connection, args: dict) -> dict:
    """Refresh the caggs over the touched window, then the school tables from them."""
    with _autocommit(conn), conn.cursor(row_factory=dict_row) as cur:
        if not cur.execute("SELECT pg_try_advisory_lock(%s) AS ok", (_LOCK,)).fetchone()["ok"]:
            return {"skipped": "another refresh is running"}
        try:
            params = _window_params(cur, args)
            window = cur.execute(_WINDOW, params).fetchone()
            if window["hour_from"] is not None:
                for cagg in HOURLY_CAGGS:
                    _refresh_cagg(cur, cagg, window["hour_from"], window["hour_to"])
                for cagg in DAILY_CAGGS:
                    _refresh_cagg(cur, cagg, window["day_from"], window["day_to"])
            with conn.transaction():
                touched = _school_rollups(cur, params)
        finally:
            cur.execute("SELECT pg_advisory_unlock(%s)", (_LOCK,))
    return {"device_hours": touched, "upto": params["upto"]}


CAGG_ATTEMPTS = 6  # TimescaleDB's own refresh policy may hold the same window for a moment


def _refresh_cagg(cur, cagg: str, start: datetime, end: datetime) -> None:
    """Refresh one cagg over a window, waiting out a concurrent refresh of it (its policy job's)."""
    for attempt in range(1, CAGG_ATTEMPTS + 1):
        try:
            cur.execute(_REFRESH_CAGG, (cagg, start, end))
            return
        except psycopg.errors.LockNotAvailable:
            if attempt == CAGG_ATTEMPTS:
                raise
            log.info("%s is being refreshed by another session; retrying", cagg)
            time.sleep(0.5 * attempt)


def _school_rollups(cur, params: dict) -> int:
    """The school tables for the touched device hours and days, and the watermark."""
    cur.execute(_TOUCHED, params)
    touched = cur.execute("SELECT count(*) AS n FROM touched").fetchone()["n"]
    if touched:
        _days_and_schools(cur, params, _daily_sql()[:1])
    rebuild_stale_schools(cur, params["tz"])
    recount_counties(cur, params["tz"])
    cur.execute(_SAVE_WATERMARK, params)
    return touched


@contextmanager
def _autocommit(conn: psycopg.Connection) -> Iterator[None]:
    """CALL refresh_continuous_aggregate refuses to run inside a transaction block."""
    before = conn.autocommit
    conn.autocommit = True
    try:
        yield
    finally:
        conn.autocommit = before


def run_forever(pool: ConnectionPool, stop: threading.Event, *, interval_s: float = 60.0,
                now_interval_s: float = 5.0, tz: str | None = None,
                jobs: Sequence[Callable[[psycopg.Connection], object]] = ()) -> None:
    """Refresh the per-school current state every `now_interval_s`; the rollups, then `jobs`, every `interval_s`."""
    next_rollup = 0.0
    clock = 0.0
    while not stop.is_set():
        try:
            with pool.connection() as conn:
                school_now.refresh(conn)
                if clock >= next_rollup:
                    result = refresh(conn, tz)
                    next_rollup = clock + interval_s
                    log.info("rollups refreshed", extra=result)
                    for job in jobs:
                        job(conn)
        except psycopg.Error as exc:
            log.warning("refresh failed: %s", exc)
        stop.wait(now_interval_s)
        clock += now_interval_s


def match_recent_sessions(conn: psycopg.Connection, tz: str) -> None:
    """Re-match yesterday's and today's sessions: they change as lessons are delivered and late
    reports arrive."""
    now = datetime.now(UTC)
    today = now.astimezone(ZoneInfo(tz)).date()
    match_sessions(conn, today - timedelta(days=1), today, now)


def run(platform: PlatformSettings, *, interval_s: float = 60.0, now_interval_s: float = 5.0) -> None:
    """Run the service until SIGTERM/SIGINT: its own pool, one worker thread."""
    pool = open_pool(platform.require_database_url(), max_size=2, name="rollups")
    try:
        run_until_shutdown(lambda stop: run_forever(
            pool, stop, interval_s=interval_s, now_interval_s=now_interval_s, tz=platform.timezone,
            jobs=[lambda conn: match_recent_sessions(conn, platform.timezone)]), "rollups")
    finally:
        pool.close()
