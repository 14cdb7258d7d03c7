"""Hourly and daily rollups: exact figures from hand-written telemetry, late data, local days."""

from datetime import UTC, datetime, timedelta

import pytest

from core.rollups import refresh

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


def test_late_data_updates_the_old_bucket_and_the_next(db, registry, school):
    b = registry.device(school)
    board(db, b, T0, 1000)
    board(db, b, T0 + timedelta(hours=1), 1200)
    roll(db)
    board(db, b, T0 + timedelta(minutes=30), 1150)  # arrives late, for the earlier hour
    assert roll(db)["device_hours"] == 1
    h = hourly(db, b)
    assert h[T0]["active_use_s"] == 150 and h[T0 + timedelta(hours=1)]["active_use_s"] == 50
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
