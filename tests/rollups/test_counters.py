"""Cumulative counters are guarded (sql/020_counter_increase.sql): a reading adds at most the time
that passed since the device's previous reading; after a reset or a jump counting goes on from
the new base; each is recorded in counter_anomaly; an hour counts at most an hour; a day is its hours."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollups.service import refresh

# 09:00 in the schools' zone two days ago: inside the rollups' reach in both storage modes
T0 = datetime.now(UTC).replace(hour=1, minute=0, second=0, microsecond=0) - timedelta(days=2)


@pytest.fixture
def school(registry) -> str:
    registry.area()
    return registry.school()


def _store(db, device: str, readings: list[tuple[int, int]]) -> None:
    """(minutes after T0, counter) readings, stored in the given order, one INSERT each."""
    for minute, value in readings:
        db.execute("INSERT INTO board_telemetry (device_id, time, seq, power_on, screen_on, active_use_s) "
                   "VALUES (%s, %s, %s, true, true, %s) ON CONFLICT DO NOTHING",
                   (device, T0 + timedelta(minutes=minute), minute, value))


def _increases(db, device: str) -> list[int]:
    return [r["use_increase_s"] for r in db.execute(
        "SELECT use_increase_s FROM board_telemetry WHERE device_id = %s ORDER BY time", (device,))]


def _anomalies(db, device: str) -> list[tuple]:
    return [(r["kind"], r["previous"], r["value"], r["counted"]) for r in db.execute(
        "SELECT kind, previous, value, counted FROM counter_anomaly WHERE device_id = %s ORDER BY time", (device,))]


def test_a_jump_counts_from_its_new_base_and_is_recorded(db, registry, school):
    board = registry.device(school, kind="board")
    _store(db, board, [(0, 28_600), (1, 28_660), (2, 2_903_000), (3, 2_903_060)])
    assert _increases(db, board) == [0, 60, 0, 60]
    assert _anomalies(db, board) == [("jump", 28_660, 2_903_000, 0)]


def test_a_reset_counts_from_its_new_base_and_is_recorded(db, registry, school):
    board = registry.device(school, kind="board")
    _store(db, board, [(0, 1000), (1, 1060), (2, 30), (3, 90)])
    assert _increases(db, board) == [0, 60, 0, 60]
    assert _anomalies(db, board) == [("reset", 1060, 30, 0)]


def test_a_late_reading_adds_nothing_and_a_redelivery_changes_nothing(db, registry, school):
    board = registry.device(school, kind="board")
    _store(db, board, [(0, 0), (10, 600), (5, 300)])
    assert _increases(db, board) == [0, 0, 600]  # by time: the base, the late one, the one that counted its span
    assert sum(_increases(db, board)) == 600
    _store(db, board, [(0, 0), (10, 600), (5, 300), (20, 10**9)])
    _store(db, board, [(20, 10**9)])
    assert sum(_increases(db, board)) == 600 and len(_anomalies(db, board)) == 1


def test_the_81_hour_board_day_cannot_happen(db, registry, school):
    """The demo's bug: the past and the live simulator started the counter from different bases."""
    board = registry.device(school, kind="board")
    past = [(m, 28_000 + 30 * m) for m in range(0, 60)]
    live = [(m, 2_900_000 + 30 * (m - 60)) for m in range(60, 120)]
    _store(db, board, past + live)
    refresh(db, now=datetime.now(UTC) + timedelta(hours=1))  # received up to then
    hours = db.execute("SELECT bucket, active_use_s FROM device_hourly WHERE device_id = %s ORDER BY bucket",
                       (board,)).fetchall()
    assert [h["active_use_s"] for h in hours] == [59 * 30, 59 * 30]  # each hour's own use, the jump not counted
    day = db.execute("SELECT active_use_s FROM device_daily WHERE device_id = %s", (board,)).fetchone()
    assert day["active_use_s"] == sum(h["active_use_s"] for h in hours)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.integers(1, 180), st.integers(-5000, 5000)), min_size=1, max_size=40),
       shuffle=st.randoms(use_true_random=False), duplicate=st.booleans())
def test_whatever_a_counter_does_an_hour_counts_at_most_the_time_that_passed(db, registry, school, steps,
                                                                           shuffle, duplicate):
    """Random gaps, resets, jumps, late and repeated deliveries: nothing counted is ever more than
    the wall time between the first and last reading, no hour more than an hour, and a day is
    always the sum of its hours."""
    board = registry.device(school, kind="board")
    minute, value, readings = 0, 10_000, [(0, 10_000)]
    for gap, change in steps:
        minute += gap
        value = max(0, value + change * 60) if change % 7 else change * 10**6 % 10**9  # resets and jumps too
        readings.append((minute, value))
    arrival = list(readings) + (readings[: len(readings) // 2] if duplicate else [])
    shuffle.shuffle(arrival)
    _store(db, board, arrival)
    increases = _increases(db, board)
    assert all(i >= 0 for i in increases)
    assert sum(increases) <= minute * 60 * 1.01 + 2 * len(readings)
    refresh(db, now=datetime.now(UTC) + timedelta(hours=1))
    hours = db.execute("SELECT bucket, active_use_s FROM device_hourly WHERE device_id = %s", (board,)).fetchall()
    assert all(0 <= h["active_use_s"] <= 3600 for h in hours)
    days = db.execute("SELECT bucket, active_use_s FROM device_daily WHERE device_id = %s", (board,)).fetchall()
    assert sum(d["active_use_s"] for d in days) == sum(h["active_use_s"] for h in hours)
    db.execute("DELETE FROM board_telemetry WHERE device_id = %s", (board,))
    db.execute("DELETE FROM rollup_watermark")


def test_through_the_ingest_one_batch_out_of_order_is_judged_in_device_time(db, registry, school, database_url):
    """The ingest's own write: a batch holding the jump, shuffled, and redelivered whole."""
    from core.db import open_pool
    from core.telemetry_decode import ClockPolicy, decode
    from core.telemetry_write import store_batch

    board = registry.device(school, kind="board")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    values = [28_000, 28_060, 2_900_000, 2_900_060, 2_900_120]
    bodies = [{"v": 1, "ts": (start + timedelta(minutes=i)).isoformat(), "seq": i, "kind": "board",
               "power_on": True, "screen_on": True, "active_use_s": v} for i, v in enumerate(values)]
    policy = ClockPolicy(timedelta(minutes=5), timedelta(hours=1), timedelta(days=7))
    records = [decode(f"edu/dev/{board}/telemetry", json.dumps(b).encode(), datetime.now(UTC), policy)
               for b in (bodies[3], bodies[0], bodies[4], bodies[2], bodies[1])]
    with open_pool(database_url, min_size=1, max_size=1, name="counters-test") as pool:
        store_batch(pool, records, [])
        store_batch(pool, records, [])  # redelivered
    assert _increases(db, board) == [0, 60, 0, 60, 60]
    assert _anomalies(db, board) == [("jump", 28_060, 2_900_000, 0)]


def _judged(arrival: list[tuple[int, int, int]], per_s: float) -> tuple[dict, list[tuple]]:
    """The guard's judgement worked out here, independently of SQL: (minute, seq, value) readings
    in arrival order → the increase of each stored (minute, seq) and the anomalies, in device time.
    A reading at or before the newest stored one adds nothing; otherwise it is judged against it."""
    stored: dict[tuple[int, int], tuple[int, int]] = {}  # (minute, seq) → (value, increase)
    anomalies: list[tuple] = []
    for minute, seq, value in arrival:
        if (minute, seq) in stored:
            continue  # the unique key: a redelivery is not stored again
        newest = max(stored, default=None)
        if newest is None:
            stored[(minute, seq)] = (value, 0)
            continue
        if newest[0] >= minute:
            stored[(minute, seq)] = (value, 0)
            continue
        previous = stored[newest][0]
        elapsed = (minute - newest[0]) * 60
        fits = value >= previous and value - previous <= elapsed * per_s * 1.01 + 2 * per_s
        stored[(minute, seq)] = (value, value - previous if fits else 0)
        if not fits:
            anomalies.append((minute, "reset" if value < previous else "jump", previous, value, 0))
    return {key: increase for key, (_, increase) in stored.items()}, sorted(anomalies)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.integers(0, 90), st.integers(-3000, 3000)), min_size=1, max_size=30),
       shuffle=st.randoms(use_true_random=False), repeats=st.integers(0, 10), kind=st.sampled_from(["board", "recorder"]))
def test_each_increase_and_anomaly_is_exactly_the_guards_judgement(db, registry, school, steps, shuffle, repeats,
                                                                    kind):
    """Every reading's increase and every recorded anomaly equal a reference worked out in Python,
    for boards and recorders, whatever the order of arrival, with repeats at the same instant
    under another seq and redeliveries."""
    device = registry.device(school, kind=kind)
    minute, value, readings = 0, 50_000, [(0, 0, 50_000)]
    for gap, change in steps:
        minute += gap
        value = max(0, value + change * 20) if change % 5 else abs(change) * 997
        readings.append((minute, len(readings), value))
    arrival = readings + [shuffle.choice(readings) for _ in range(repeats)]
    arrival += [(m, s + 1000, v) for m, s, v in shuffle.sample(readings, min(repeats, len(readings)))]
    shuffle.shuffle(arrival)
    per_s = 1.0 if kind == "board" else 240.0 * 2
    for m, s, v in arrival:
        if kind == "board":
            db.execute("INSERT INTO board_telemetry (device_id, time, seq, power_on, screen_on, active_use_s) "
                       "VALUES (%s, %s, %s, true, true, %s) ON CONFLICT DO NOTHING",
                       (device, T0 + timedelta(minutes=m), s, v))
        else:
            db.execute("INSERT INTO recorder_telemetry (device_id, time, seq, recording, streaming, dropped_frames, "
                       "cameras_total, cameras_online) VALUES (%s, %s, %s, true, true, %s, 2, 2) "
                       "ON CONFLICT DO NOTHING", (device, T0 + timedelta(minutes=m), s, v))
    increases = ("SELECT time, seq, use_increase_s AS inc FROM board_telemetry WHERE device_id = %s" if kind == "board"
                 else "SELECT time, seq, frames_increase AS inc FROM recorder_telemetry WHERE device_id = %s")
    stored = {(int((r["time"] - T0).total_seconds() // 60), r["seq"]): r["inc"] for r in db.execute(increases, (device,))}
    anomalies = [(int((r["time"] - T0).total_seconds() // 60), r["kind"], r["previous"], r["value"], r["counted"])
                 for r in db.execute("SELECT time, kind, previous, value, counted FROM counter_anomaly "
                                     "WHERE device_id = %s ORDER BY time", (device,))]
    expected_increases, expected_anomalies = _judged(arrival, per_s)
    assert stored == expected_increases
    assert sorted(anomalies) == expected_anomalies
