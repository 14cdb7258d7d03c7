"""Hourly and daily rollups: exact figures from hand-written telemetry, late data, local days."""

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from psycopg import sql

from core.db import open_pool
from rollups.service import refresh, run_forever
from tests.fixtures.devices import wait_for

T0 = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)  # 08:00 in Asia/Shanghai


def board(db, device, at: datetime, use: int, *, power=True, screen=True, temp=50.0) -> None:
    db.execute("INSERT INTO board_telemetry (device_id, time, seq, power_on, screen_on, active_use_s, cpu_temp_c) "
               "VALUES (%s, %s, %s, %s, %s, %s, %s)", (device, at, int(at.timestamp()), power, screen, use, temp))


def gateway(db, device, at: datetime, rx: float, uplink: float = 100.0, latency: float = 10.0) -> None:
    db.execute("INSERT INTO gateway_telemetry (device_id, time, seq, uplink_mbps, rx_mbps, tx_mbps, latency_ms, "
               "loss_pct, aps_total, aps_online, wifi_clients) VALUES (%s,%s,%s,%s,%s,0,%s,0,4,3,10)",
               (device, at, int(at.timestamp()), uplink, rx, latency))


def roll(db) -> dict:
    return refresh(db, margin="0 seconds")


def hourly(db, device) -> dict:
    rows = db.execute("SELECT * FROM device_hourly WHERE device_id = %s ORDER BY bucket", (device,)).fetchall()
    return {r["bucket"]: r for r in rows}


@pytest.fixture
def school(registry):
    registry.area()
    return registry.school()


def test_minutes_and_counter_increases_across_hours(db, registry, school):
    b = registry.device(school)
    for minute, use, screen in ((0, 1000, True), (1, 1060, True), (2, 1100, False)):
        board(db, b, T0 + timedelta(minutes=minute, seconds=5), use, screen=screen)
    board(db, b, T0 + timedelta(minutes=2, seconds=40), 1110)  # same minute: one minute online
    board(db, b, T0 + timedelta(hours=1), 1200, power=False)
    roll(db)
    h = hourly(db, b)
    first, second = h[T0], h[T0 + timedelta(hours=1)]
    assert (first["readings"], first["online_minutes"], first["screen_on_minutes"]) == (4, 3, 3)
    assert first["active_use_s"] == 110  # 1110 - 1000 within the first hour
    assert second["active_use_s"] == 90 and second["powered_on_minutes"] == 0  # from the previous hour's last value


def test_late_data_updates_the_old_bucket_and_counts_its_counter_once(db, registry, school):
    b = registry.device(school)
    board(db, b, T0, 1000)
    board(db, b, T0 + timedelta(hours=1), 1200)
    roll(db)
    board(db, b, T0 + timedelta(minutes=30), 1150)  # arrives late, for the earlier hour
    assert roll(db)["device_hours"] == 1
    h = hourly(db, b)
    assert h[T0]["readings"] == 2 and h[T0]["online_minutes"] == 2  # the old bucket takes the reading in
    # the later reading already counted the whole span: the late one adds nothing, nothing twice
    assert h[T0]["active_use_s"] == 0 and h[T0 + timedelta(hours=1)]["active_use_s"] == 200
    day = db.execute("SELECT active_use_s, readings FROM device_daily WHERE device_id = %s", (b,)).fetchone()
    assert day == {"active_use_s": 200, "readings": 3}


def test_a_counter_reset_is_not_a_negative_increase(db, registry, school):
    b = registry.device(school)
    board(db, b, T0, 5000)
    board(db, b, T0 + timedelta(hours=1), 30)
    board(db, b, T0 + timedelta(hours=1, minutes=5), 90)
    roll(db)
    assert hourly(db, b)[T0 + timedelta(hours=1)]["active_use_s"] == 60


def test_refresh_is_idempotent(db, registry, school):
    b = registry.device(school)
    board(db, b, T0, 1000)
    board(db, b, T0 + timedelta(minutes=10), 1300)
    roll(db)
    before = db.execute("SELECT * FROM device_daily").fetchall()
    assert roll(db)["device_hours"] == 0
    assert db.execute("SELECT * FROM device_daily").fetchall() == before


def test_days_are_local_days(db, registry, school):
    b = registry.device(school)
    late_evening = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)  # 23:30 local on the 24th
    after_midnight = datetime(2026, 11, 24, 16, 30, tzinfo=UTC)  # 00:30 local on the 25th
    board(db, b, late_evening, 100)
    board(db, b, after_midnight, 160)
    roll(db)
    days = db.execute("SELECT bucket AT TIME ZONE 'Asia/Shanghai' AS local, active_use_s FROM device_daily "
                      "WHERE device_id = %s ORDER BY bucket", (b,)).fetchall()
    assert [(d["local"].date().isoformat(), d["active_use_s"]) for d in days] == [("2026-11-24", 0), ("2026-11-25", 60)]


def test_school_rollups_add_up_their_devices(db, registry, school):
    boards = [registry.device(school) for _ in range(3)]
    for i, b in enumerate(boards):
        board(db, b, T0, 1000)
        board(db, b, T0 + timedelta(minutes=20), 1000 + 300 * i)
    g = registry.device(school, "gateway")
    gateway(db, g, T0, rx=40)
    gateway(db, g, T0 + timedelta(minutes=1), rx=90, latency=30)
    roll(db)
    s = db.execute("SELECT * FROM school_hourly WHERE kind = 'board'").fetchone()
    assert (s["devices_reporting"], s["devices_active"], s["active_use_s"], s["online_minutes"]) == (3, 2, 900, 6)
    n = db.execute("SELECT * FROM school_daily WHERE kind = 'gateway'").fetchone()
    assert n["utilisation_max"] == pytest.approx(0.9) and n["latency_avg"] == pytest.approx(20.0)


def recorder(db, device, at: datetime, frames: int, *, recording=True, streaming=False, offline=0) -> None:
    db.execute("INSERT INTO recorder_telemetry (device_id, time, seq, recording, streaming, dropped_frames, "
               "cameras_total, cameras_online, storage_free_gb) VALUES (%s,%s,%s,%s,%s,%s,3,%s,500)",
               (device, at, int(at.timestamp()), recording, streaming, frames, 3 - offline))


def test_recorder_minutes_frames_and_cameras(db, registry, school):
    r = registry.device(school, "recorder")
    recorder(db, r, T0, 10)
    recorder(db, r, T0 + timedelta(minutes=1), 12, streaming=True, offline=2)
    recorder(db, r, T0 + timedelta(minutes=2), 15, recording=False)
    recorder(db, r, T0 + timedelta(hours=1), 40, recording=False)
    roll(db)
    first, second = hourly(db, r)[T0], hourly(db, r)[T0 + timedelta(hours=1)]
    assert (first["recording_minutes"], first["streaming_minutes"], first["cameras_offline_max"]) == (2, 1, 2)
    assert (first["dropped_frames_increase"], second["dropped_frames_increase"]) == (5, 25)
    assert first["active_use_s"] is None and first["rx_mbps_avg"] is None  # not a board's or a gateway's figure


def test_rows_received_after_now_wait_for_the_next_refresh(db, registry, school):
    b = registry.device(school)
    board(db, b, T0, 1000)
    assert refresh(db, margin="0 seconds", now=datetime(2026, 1, 1, tzinfo=UTC))["device_hours"] == 0
    assert hourly(db, b) == {}
    assert roll(db)["device_hours"] == 1


def test_school_rows_are_the_sums_of_their_device_rows(db, registry, school):
    for i in range(3):
        b = registry.device(school)
        board(db, b, T0 + timedelta(minutes=50), 100, power=bool(i))
        board(db, b, T0 + timedelta(hours=1, minutes=10), 100 + 60 * i)
    roll(db)
    for grain in ("hourly", "daily"):
        devices = db.execute(SUMS.format(grain=grain)).fetchall()
        schools = db.execute(SCHOOL.format(grain=grain)).fetchall()
        assert devices == schools and devices


# Joined to the registry: with TimescaleDB, caggs keep earlier tests' (deleted) devices.
SUMS = """SELECT h.bucket, count(*) AS n, sum(online_minutes) AS online, sum(powered_on_minutes) AS powered,
                 sum(active_use_s) AS use FROM device_{grain} h
          JOIN device d ON d.id = h.device_id GROUP BY 1 ORDER BY 1"""
SCHOOL = """SELECT bucket, devices_reporting::bigint AS n, online_minutes AS online, powered_on_minutes AS powered,
                   active_use_s::numeric AS use FROM school_{grain} ORDER BY 1"""


@pytest.fixture
def timescale(db):
    if not db.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
        pytest.skip("TimescaleDB extension not installed")
    return db


@pytest.mark.timescaledb
def test_timescaledb_rollups_are_real_time_continuous_aggregates(timescale):
    caggs = timescale.execute("SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates "
                              "ORDER BY 1").fetchall()
    assert {c["view_name"] for c in caggs} == {f"{k}_{g}_cagg" for k in ("board", "recorder", "gateway",
                                                                        "board_use", "recorder_frames")
                                              for g in ("hourly", "daily")}
    assert not any(c["materialized_only"] for c in caggs)
    kinds = timescale.execute("SELECT relname, relkind FROM pg_class WHERE relname LIKE ANY "
                              "(ARRAY['device\\_%%ly', 'school\\_%%ly']) ORDER BY 1").fetchall()
    assert [(k["relname"], k["relkind"]) for k in kinds] == [
        ("device_daily", "v"), ("device_hourly", "v"), ("school_daily", "r"), ("school_hourly", "r")]


@pytest.mark.timescaledb
def test_timescaledb_policies_compress_and_expire_raw_telemetry(timescale):
    jobs = timescale.execute("SELECT proc_name, hypertable_name, config FROM timescaledb_information.jobs "
                             "WHERE hypertable_name = 'board_telemetry' ORDER BY 1").fetchall()
    assert {j["proc_name"]: j["config"].get("compress_after") or j["config"].get("drop_after") for j in jobs} == {
        "policy_compression": "7 days", "policy_retention": "180 days"}
    settings = timescale.execute("SELECT segmentby, orderby FROM timescaledb_information.hypertable_compression_settings "
                                 "WHERE hypertable = 'board_telemetry'::regclass").fetchone()
    assert settings == {"segmentby": "device_id", "orderby": "\"time\" DESC"}
    refreshes = timescale.execute("SELECT count(*) AS n FROM timescaledb_information.jobs "
                                  "WHERE proc_name = 'policy_refresh_continuous_aggregate'").fetchone()
    assert refreshes["n"] == 10


@pytest.mark.timescaledb
def test_timescaledb_refresh_materialises_the_touched_window(timescale, registry, school):
    b = registry.device(school)
    board(timescale, b, T0, 1000)
    board(timescale, b, T0 + timedelta(minutes=30), 1240)
    roll(timescale)
    table = timescale.execute(MATERIALIZED, ("board_hourly_cagg",)).fetchone()
    rows = timescale.execute(sql.SQL("SELECT use_min, use_max, online_minutes FROM {} WHERE device_id = %s").format(
        sql.Identifier(table["schema"], table["name"])), (b,)).fetchall()
    assert rows == [{"use_min": 1000, "use_max": 1240, "online_minutes": 2}]


MATERIALIZED = """SELECT materialization_hypertable_schema AS schema, materialization_hypertable_name AS name
                  FROM timescaledb_information.continuous_aggregates WHERE view_name = %s"""


def test_a_day_already_rolled_up_takes_in_late_hours(db, registry, school):
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    first, second = registry.device(school), registry.device(school)
    board(db, first, max(now - timedelta(minutes=10), midnight + timedelta(hours=1)), 100)  # today, going on
    roll(db)
    board(db, second, midnight - timedelta(minutes=30), 100)  # a new device's late hours, over two local days
    board(db, second, midnight + timedelta(minutes=30), 130)
    roll(db)
    days = db.execute("SELECT device_id, bucket, active_use_s FROM device_daily WHERE device_id IN (%s, %s) "
                      "ORDER BY device_id, bucket", (first, second)).fetchall()
    yesterday = midnight - timedelta(days=1)
    assert [(d["device_id"], d["bucket"], d["active_use_s"]) for d in days] == [
        (first, midnight, 0), (second, yesterday, 0), (second, midnight, 30)]
    school_day = db.execute("SELECT devices_reporting, active_use_s FROM school_daily WHERE bucket = %s",
                            (midnight,)).fetchone()
    assert school_day == {"devices_reporting": 2, "active_use_s": 30}


def test_the_service_refreshes_through_its_own_pool(database_url, db, registry, school):
    """As `cockpit rollups` runs: its own pool of ordinary (not autocommit) connections. On
    TimescaleDB this failed on every refresh ("can't change 'autocommit' now")."""
    b = registry.device(school)
    board(db, b, T0, 1000)
    board(db, b, T0 + timedelta(minutes=30), 1240)
    db.execute("UPDATE board_telemetry SET received_at = now() - interval '1 hour'")  # past the service's margin
    stop = threading.Event()
    with open_pool(database_url, min_size=1, max_size=2, name="rollups-test") as pool:
        worker = threading.Thread(target=run_forever, args=(pool, stop), kwargs={"now_interval_s": 0.2})
        worker.start()
        try:
            # the school rollups are written by a refresh only (device rollups may be real-time views)
            wait_for(lambda: db.execute("SELECT 1 FROM school_hourly WHERE school_code = %s", (school,)).fetchone(),
                     timeout=30)
        finally:
            stop.set()
            worker.join(10)
    [row] = hourly(db, b).values()
    assert row["use_min"] == 1000 and row["use_max"] == 1240
    assert db.execute("SELECT received_upto FROM rollup_watermark WHERE name = 'telemetry'").fetchone()
