"""The simulator's faults and misbehaviour: how often they strike, and what the platform sees of them."""

import random
import threading
from collections import Counter

import pytest

from core.settings import platform_settings
from devices.faults import FaultSchedule, parse_injection
from devices.fleet import Fleet
from devices.settings import SimulatorSettings
from devices.simulator import build
from tests.fixtures.devices import wait_for


def test_faults_strike_at_their_rates_whatever_the_tick():
    kinds = {f"b{i}": "board" for i in range(10_000)} | {f"g{i}": "gateway" for i in range(2_000)}
    schedule = FaultSchedule(random.Random(1), kinds)
    started = Counter()
    for second in range(1, 3601):
        for _device, fault in schedule.tick(float(second), 1.0)[0]:
            started[fault] += 1
    # an hour: 10,000 boards x 1 % overheat, 2,000 gateways x 0.4 % network down
    assert 70 <= started["overheat"] <= 130
    assert 2 <= started["network_down"] <= 20
    assert "camera_lost" not in started  # no recorders here
    assert FaultSchedule(random.Random(1), kinds, scale=0).tick(10.0, 3600.0) == ([], [])


def test_an_injected_fault_ends_after_its_minutes():
    schedule = FaultSchedule(random.Random(1), {"b1": "board"}, scale=0)
    schedule.inject("b1", "overheat", now=0.0, minutes=2)
    assert schedule.tick(119.0, 1.0) == ([], [])
    assert schedule.tick(120.0, 1.0) == ([], [("b1", "overheat")])
    with pytest.raises(ValueError, match="unknown fault"):
        schedule.inject("b1", "meltdown", now=0.0, minutes=1)


@pytest.mark.parametrize("text, expected", [("B1:overheat", ("B1", "overheat", 10.0)),
                                            ("G1:network_down:2.5", ("G1", "network_down", 2.5))])
def test_injections_are_read_from_the_command_line(text, expected):
    assert parse_injection(text) == expected


@pytest.mark.parametrize("text", ["B1", ":overheat", "B1:meltdown", "B1:overheat:0", "B1:overheat:x"])
def test_bad_injections_are_refused(text):
    with pytest.raises(ValueError):
        parse_injection(text)


@pytest.fixture
def run_simulator(database_url, broker):
    """Start a simulator over the registry in a thread; stopped after the test."""
    running: list[tuple[threading.Event, threading.Thread]] = []

    def start(**settings):
        sim = build(database_url, Fleet(platform_settings().require_broker()),
                    SimulatorSettings(**{"fault_scale": 0, "skewed_share": 0, "duplicate_share": 0, "late_share": 0,
                                         **settings}), "Asia/Shanghai")
        stop = threading.Event()
        thread = threading.Thread(target=sim.run, args=(stop,), daemon=True)
        thread.start()
        running.append((stop, thread))
        return sim

    yield start
    for stop, thread in running:
        stop.set()
        thread.join(10)


def _always_on_school(registry) -> tuple[str, list[str]]:
    """A school with two recording rooms and a gateway (always on, unlike boards at night)."""
    registry.area()
    school = registry.school()
    return school, [registry.device(school, "recorder"), registry.device(school, "recorder"),
                    registry.device(school, "gateway")]


def _online(db, devices: list[str]) -> dict[str, bool]:
    return {r["device_id"]: r["online"] for r in db.execute(
        "SELECT device_id, online FROM device_state WHERE device_id = ANY(%s)", (devices,))}


def test_a_school_network_down_takes_the_school_off_line_and_back(db, registry, start_ingest, run_simulator):
    _school, devices = _always_on_school(registry)
    start_ingest()
    sim = run_simulator(interval_s=0.5)
    wait_for(lambda: _online(db, devices) == dict.fromkeys(devices, True))

    sim.inject(devices[-1], "network_down", minutes=0.1)
    wait_for(lambda: _online(db, devices) == dict.fromkeys(devices, False), timeout=10)
    reasons = {r["reason"] for r in db.execute(
        "SELECT DISTINCT ON (device_id) reason FROM device_status_change WHERE device_id = ANY(%s) "
        "ORDER BY device_id, time DESC", (devices,))}
    assert reasons == {"will"}  # cut off, not switched off
    wait_for(lambda: _online(db, devices) == dict.fromkeys(devices, True), timeout=30)


def test_a_lost_camera_shows_in_the_recorders_readings(db, registry, start_ingest, run_simulator):
    _school, devices = _always_on_school(registry)
    start_ingest()
    sim = run_simulator(interval_s=0.5)
    recorder = devices[0]
    sim.inject(recorder, "camera_lost", minutes=1)
    query = "SELECT cameras_total, cameras_online FROM recorder_telemetry WHERE device_id = %s ORDER BY time DESC"
    wait_for(lambda: (row := db.execute(query, (recorder,)).fetchone()) is not None
             and row["cameras_online"] == row["cameras_total"] - 1)


def test_duplicated_and_late_messages_are_stored_once_and_in_full(db, registry, start_ingest, run_simulator):
    _school, devices = _always_on_school(registry)
    start_ingest()
    sim = run_simulator(interval_s=0.2, duplicate_share=0.3, late_share=0.3)
    readings = ("SELECT device_id, array_agg(seq ORDER BY seq) AS seqs FROM "
                "(SELECT device_id, seq FROM recorder_telemetry UNION ALL SELECT device_id, seq FROM gateway_telemetry) t "
                "GROUP BY device_id")
    wait_for(lambda: len(rows := db.execute(readings).fetchall()) == 3 and all(len(r["seqs"]) >= 40 for r in rows),
             timeout=30)
    stored = 0
    for row in db.execute(readings).fetchall():
        seqs = row["seqs"]
        assert seqs == list(range(seqs[0], seqs[-1] + 1)), f"{row['device_id']} lost a reading"
        stored += len(seqs)
    assert sim.fleet.published > stored + 20  # duplicates were sent (and not stored twice)
    assert db.execute("SELECT count(*) AS n FROM dead_letter").fetchone()["n"] == 0
