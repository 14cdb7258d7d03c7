"""The simulated past of the demo province tells the truth: it follows the school calendar, its hours
add up to its days, it reaches back to the start of the term, and the simulator goes on from it."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.rows import dict_row

from core.calendar import LESSON_HOURS
from devices.behaviour import UseModel, reading
from devices.simulator import load_devices, resume_counters
from ops.seed.calendar import term_start
from ops.seed.history import demo_school, school_calendar
from rollups.service import refresh
from tests.fixtures.demo import HISTORY_NOW, HISTORY_TZ

TZ, NOW = HISTORY_TZ, HISTORY_NOW  # a Wednesday, in lesson time
SATURDAY, THURSDAY, NATIONAL_DAY = date(2026, 11, 21), date(2026, 11, 19), date(2026, 10, 2)


@pytest.fixture
def past(simulated_past) -> str:
    """A demo province of its own, with its simulated past as at NOW (made once, see tests/fixtures/demo.py)."""
    return simulated_past


@pytest.fixture
def conn(past):
    """A connection whose every change is rolled back after the test."""
    with psycopg.connect(past, row_factory=dict_row) as c:
        yield c
        c.rollback()


@pytest.fixture
def device_rollups(conn):
    """The simulated past's device rollups, which it writes only where they are tables (plain
    PostgreSQL); with TimescaleDB they are continuous aggregates over raw readings, which the
    past has for one school only."""
    if conn.execute("SELECT relkind = 'v' AS view FROM pg_class WHERE oid = 'device_hourly'::regclass").fetchone()["view"]:
        pytest.skip("with TimescaleDB the simulated past has device rollups for the demo school only")
    return conn


def _day(bucket: datetime) -> date:
    return bucket.astimezone(ZoneInfo(TZ)).date()


def _live_readings(devices, cal, start: datetime, minutes: int) -> list[tuple]:
    rows = []
    for k in range(minutes):
        for dev in devices:
            moment = start + timedelta(seconds=60 * k + 7)
            r = reading(dev, moment, cal, 60)
            rows.append((dev.id, r.ts, r.seq, r.power_on, r.screen_on, r.active_use_s))
    return sorted(rows, key=lambda r: (r[0], r[1]))


def _insert(conn, rows: list[tuple]) -> None:
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO board_telemetry (device_id, time, seq, power_on, screen_on, active_use_s) "
                        "VALUES (%s, %s, %s, %s, %s, %s)", rows)


def test_the_simulator_goes_on_from_the_simulated_counters(past, conn):
    school = demo_school(past)
    cal = school_calendar(conn, TZ)
    devices = [d for d in load_devices(conn) if d.school_code == school and d.kind == "board"]
    assert len(devices) >= 8 and all(d.last_use is not None for d in devices)
    assert max(d.last_use[0] for d in devices) > NOW - timedelta(minutes=2), "history reads up to now"

    start = NOW + timedelta(seconds=40)  # the simulator starts
    resume_counters(devices, cal, start)
    model = UseModel(cal)
    for d in devices:  # the model's counter, continued from the last simulated reading
        assert d.active_use_s == model.counter(d.habits, start) >= d.last_use[1]
    _insert(conn, _live_readings(devices, cal, start, 30))

    ids = [d.id for d in devices]
    anomalies = conn.execute("SELECT * FROM counter_anomaly WHERE device_id = ANY(%s)", (ids,)).fetchall()
    assert anomalies == []
    moved = conn.execute("SELECT count(DISTINCT device_id) AS n FROM board_telemetry WHERE device_id = ANY(%s) "
                         "AND time > %s AND use_increase_s > 0", (ids, NOW)).fetchone()["n"]
    assert moved >= len(devices) // 2, "the live readings count the lesson's use"

    # restarted four hours later, in the afternoon lessons: on from the last live readings
    later = NOW + timedelta(hours=4)
    again = [d for d in load_devices(conn) if d.id in ids]
    assert all(d.last_use[0] > NOW for d in again)
    resume_counters(again, cal, later)
    _insert(conn, _live_readings(again, cal, later, 10))
    assert conn.execute("SELECT count(*) AS n FROM counter_anomaly WHERE device_id = ANY(%s)",
                        (ids,)).fetchone()["n"] == 0


def test_the_simulated_readings_are_what_the_rollups_say(conn, device_rollups):
    """The rollups service, recomputing the demo school's hours from its raw readings, finds the same."""
    query = ("SELECT device_id, bucket, readings, online_minutes, powered_on_minutes, screen_on_minutes, use_min, "
             "use_max, active_use_s FROM device_hourly "
             "WHERE device_id IN (SELECT DISTINCT device_id FROM board_telemetry) ORDER BY 1, 2")
    daily = query.replace("device_hourly", "device_daily")
    before, days_before = conn.execute(query).fetchall(), conn.execute(daily).fetchall()
    raw_hours = conn.execute("SELECT count(DISTINCT (device_id, date_trunc('hour', time))) AS n "
                             "FROM board_telemetry").fetchone()["n"]
    assert raw_hours > 100

    result = refresh(conn, TZ, margin="0 seconds")
    assert result["device_hours"] == raw_hours
    after = {(r["device_id"], r["bucket"]): r for r in conn.execute(query).fetchall()}
    recomputed = [r for r in before if r["bucket"] < NOW.replace(minute=0)]
    assert recomputed and all(after[r["device_id"], r["bucket"]] == r for r in recomputed)
    today = datetime(2026, 11, 25, tzinfo=ZoneInfo(TZ))  # gets the hour in progress from the raw readings
    assert [r for r in conn.execute(daily).fetchall() if r["bucket"] < today] == \
        [r for r in days_before if r["bucket"] < today]


def test_a_day_is_the_sum_of_its_hours(conn, device_rollups):
    hourly_from = conn.execute("SELECT min(bucket) AS b FROM device_hourly").fetchone()["b"]
    assert hourly_from <= NOW - timedelta(hours=48)
    assert hourly_from.astimezone(ZoneInfo(TZ)).time().hour == 0, "the hours start at a local midnight"
    mismatches = conn.execute("""
        WITH h AS (
            SELECT device_id, date_trunc('day', bucket AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s AS bucket,
                   sum(readings) AS readings, sum(online_minutes) AS online_minutes,
                   sum(powered_on_minutes) AS powered_on_minutes, sum(screen_on_minutes) AS screen_on_minutes,
                   sum(active_use_s) AS active_use_s, min(use_min) AS use_min, max(use_max) AS use_max,
                   sum(recording_minutes) AS recording_minutes, sum(streaming_minutes) AS streaming_minutes,
                   max(utilisation_max) AS utilisation_max, max(rx_mbps_max) AS rx_mbps_max,
                   CASE WHEN min(kind) = 'board' THEN count(*) FILTER (WHERE active_use_s > 0) END AS active_hours
            FROM device_hourly GROUP BY 1, 2),
        d AS (
            SELECT device_id, bucket, readings, online_minutes, powered_on_minutes, screen_on_minutes, active_use_s,
                   use_min, use_max, recording_minutes, streaming_minutes, utilisation_max, rx_mbps_max, active_hours
            FROM device_daily WHERE bucket >= %(since)s)
        SELECT count(*) AS n, count(*) FILTER (WHERE h::text IS DISTINCT FROM d::text) AS wrong
        FROM h FULL JOIN d USING (device_id, bucket)""", {"tz": TZ, "since": hourly_from}).fetchone()
    assert mismatches["wrong"] == 0 and mismatches["n"] > 2000
    days = conn.execute("SELECT count(*) AS n, count(DISTINCT bucket) AS days FROM device_daily "
                        "WHERE bucket >= %s", (hourly_from,)).fetchone()
    assert days["days"] == 3 and days["n"] > 2000  # Monday, Tuesday and Wednesday morning, every device

    schools = conn.execute("""
        WITH h AS (SELECT school_code, kind, date_trunc('day', bucket AT TIME ZONE %(tz)s) AS day,
                          sum(online_minutes) AS online, sum(active_use_s) AS use, sum(streaming_minutes) AS streamed,
                          max(utilisation_max) AS peak
                   FROM school_hourly GROUP BY 1, 2, 3),
             d AS (SELECT school_code, kind, bucket AT TIME ZONE %(tz)s AS day, online_minutes AS online,
                          active_use_s AS use, streaming_minutes AS streamed, utilisation_max AS peak
                   FROM school_daily WHERE bucket >= %(since)s)
        SELECT count(*) FILTER (WHERE h::text IS DISTINCT FROM d::text) AS wrong, count(*) AS n
        FROM h FULL JOIN d USING (school_code, kind, day)""", {"tz": TZ, "since": hourly_from}).fetchone()
    assert schools["wrong"] == 0 and schools["n"] > 900


def test_a_days_lesson_hours_are_the_sum_of_its_lesson_hours(conn):
    """The lens the past is given in closed form (sql/022_lesson_hours.sql) is what its hours say."""
    hourly_from = conn.execute("SELECT min(bucket) AS b FROM school_hourly").fetchone()["b"]
    rows = conn.execute("""
        WITH h AS (SELECT school_code, kind, date_trunc('day', bucket AT TIME ZONE %(tz)s) AS day,
                          sum(online_minutes) AS online, sum(powered_on_minutes) AS powered,
                          sum(active_use_s) AS use, sum(recording_minutes) AS recorded,
                          sum(streaming_minutes) AS streamed
                   FROM school_hourly WHERE extract(hour FROM bucket AT TIME ZONE %(tz)s)::int = ANY(%(hours)s)
                   GROUP BY 1, 2, 3),
             d AS (SELECT school_code, kind, bucket AT TIME ZONE %(tz)s AS day, lesson_online_minutes AS online,
                          lesson_powered_on_minutes AS powered, lesson_active_use_s AS use,
                          lesson_recording_minutes AS recorded, lesson_streaming_minutes AS streamed
                   FROM school_daily WHERE bucket >= %(since)s AND lesson_online_minutes IS NOT NULL)
        SELECT count(*) FILTER (WHERE h::text IS DISTINCT FROM d::text) AS wrong, count(*) AS n,
               count(*) FILTER (WHERE d.use > 0) AS used
        FROM h FULL JOIN d USING (school_code, kind, day)""",
                        {"tz": TZ, "since": hourly_from, "hours": list(LESSON_HOURS)}).fetchone()
    assert rows["wrong"] == 0 and rows["n"] > 900 and rows["used"] > 100
    term = conn.execute("SELECT count(*) AS n FROM school_daily WHERE bucket < %s AND lesson_online_minutes > 0",
                        (hourly_from,)).fetchone()
    assert term["n"] > 10_000  # and the term before the hours has them too


def _school_day(conn, day: date) -> dict:
    return conn.execute("""
        SELECT coalesce(sum(active_use_s) FILTER (WHERE kind = 'board'), 0)::float8 AS use,
               coalesce(sum(online_minutes) FILTER (WHERE kind = 'board'), 0)::float8 AS board_minutes,
               coalesce(sum(streaming_minutes) FILTER (WHERE kind = 'recorder'), 0)::float8 AS streamed,
               max(utilisation_max) FILTER (WHERE kind = 'gateway') AS peak,
               sum(online_minutes) FILTER (WHERE kind = 'gateway')::float8 AS gateway_minutes
        FROM school_daily WHERE bucket = (%s::timestamp AT TIME ZONE %s)""", (day, TZ)).fetchone()


def test_weekends_holidays_and_nights_look_like_them(conn, device_rollups):
    weekday, saturday, holiday = (_school_day(conn, d) for d in (THURSDAY, SATURDAY, NATIONAL_DAY))
    boards = conn.execute("SELECT count(*) AS n FROM device WHERE kind = 'board'").fetchone()["n"]
    assert weekday["use"] > boards * 2 * 3600, "boards are used a couple of hours a school day"
    for off in (saturday, holiday):
        assert off["use"] < 0.02 * weekday["use"] and off["board_minutes"] < 0.02 * weekday["board_minutes"]
        assert off["streamed"] == 0 < weekday["streamed"], "remote lessons on school days only"
        assert off["peak"] < 0.5 * weekday["peak"], "gateways carry less traffic"
        assert off["gateway_minutes"] > 0.9 * weekday["gateway_minutes"], "but are on"
    make_up = _school_day(conn, date(2026, 10, 10))  # a Saturday worked for 国庆
    assert make_up["use"] > 0.5 * weekday["use"]

    hours = conn.execute("""
        SELECT extract(hour FROM bucket AT TIME ZONE %s) AS hour, kind, sum(active_use_s) AS use,
               sum(online_minutes) AS online, sum(recording_minutes) AS recorded
        FROM device_hourly GROUP BY 1, 2""", (TZ,)).fetchall()
    boards = {r["hour"]: r for r in hours if r["kind"] == "board"}
    assert set(boards) <= set(range(7, 18)), "boards are off at night"
    assert all(r["use"] == 0 for h, r in boards.items() if h in (7, 12, 13)), "no use outside lessons"
    recorded = {r["hour"] for r in hours if r["kind"] == "recorder" and r["recorded"]}
    assert recorded and recorded <= set(range(8, 17)), "recorders record in lesson hours only"


def test_daily_rollups_reach_back_to_the_term_start(conn, device_rollups):
    first = term_start(NOW.astimezone(ZoneInfo(TZ)).date())
    assert first == date(2026, 9, 1)
    days = conn.execute("""
        SELECT (bucket AT TIME ZONE %s)::date AS day, count(*) FILTER (WHERE kind = 'board') AS boards,
               count(*) AS devices
        FROM school_daily GROUP BY 1 ORDER BY 1""", (TZ,)).fetchall()
    assert days[0]["day"] == first and days[-1]["day"] == date(2026, 11, 25)
    assert len(days) == (date(2026, 11, 25) - first).days + 1, "every day has its rollups"
    assert sum(d["boards"] > 0 for d in days) > 55, "every school day has its boards'"
    trend = conn.execute("""
        SELECT avg(active_use_s) FILTER (WHERE bucket < %s)::float8 AS first_week,
               avg(active_use_s) FILTER (WHERE bucket >= %s)::float8 AS november
        FROM device_daily WHERE kind = 'board'""", (datetime(2026, 9, 5, tzinfo=UTC),
                                                     datetime(2026, 11, 1, tzinfo=UTC))).fetchone()
    assert trend["first_week"] < 0.85 * trend["november"], "use picks up over the term's first weeks"


def test_the_current_state_follows_the_hour(conn):
    state = conn.execute("""
        SELECT d.kind, count(*) FILTER (WHERE st.online) AS online, count(*) FILTER (WHERE st.in_use) AS in_use,
               count(*) FILTER (WHERE st.streaming) AS streaming, count(*) AS n
        FROM device_state st JOIN device d ON d.id = st.device_id GROUP BY 1""").fetchall()
    by_kind = {r["kind"]: r for r in state}
    assert by_kind["board"]["in_use"] > 0.3 * by_kind["board"]["online"]  # 10:30 on a Wednesday: lesson time
    live = conn.execute("""
        SELECT count(*) AS n FROM remote_lesson WHERE weekday = 3 AND starts_at <= '10:30' AND ends_at > '10:30'
        """).fetchone()["n"]
    assert 0 < by_kind["recorder"]["streaming"] <= live
