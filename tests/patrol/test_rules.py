"""One test per rule: the condition opens an alert that fires after its for-duration."""

import json
from datetime import timedelta

import pytest

from patrol.alerts import set_override
from tests.patrol.conftest import LESSON_TIME

NOW = LESSON_TIME


def _fires(world, rule: str, device: str, for_s: int) -> dict:
    world.cycle(NOW)
    first = world.alert(rule, device)
    assert first is not None, f"{rule} did not open"
    world.cycle(NOW + timedelta(seconds=for_s + 1))
    fired = world.alert(rule, device)
    assert fired["state"] == "firing" and fired["id"] == first["id"]
    return fired


def _cameras(**kw) -> list[dict]:
    cams = [{"role": "teacher", "online": True, "brightness": 120, "frozen_frames": 0},
            {"role": "students", "online": True, "brightness": 120, "frozen_frames": 0}]
    cams[0].update(kw)
    return cams


def test_device_offline_in_a_lesson_counts_from_the_period_start(world):
    school = world.school()
    board = world.registry.device(school, "board")
    world.offline(board, NOW - timedelta(hours=14))  # switched off last night
    world.cycle(NOW.replace(minute=2))  # 10:02, two minutes into the period: pending
    pending = world.alert("device_offline", board)
    assert pending["state"] == "pending"
    assert pending["first_seen"] == NOW.replace(minute=0)
    world.cycle(NOW.replace(minute=6))
    assert world.alert("device_offline", board)["state"] == "firing"


def test_gateway_offline(world):
    school = world.school()
    gateway = world.registry.device(school, "gateway")
    world.offline(gateway, NOW - timedelta(minutes=1))
    fired = _fires(world, "gateway_offline", gateway, 120)
    assert fired["severity"] == "critical"


def test_lesson_not_started(world):
    s1, s2 = world.school(), world.school()
    main, board = world.registry.device(s1, "recorder"), world.registry.device(s2, "board")
    world.state(main, streaming=False, recording=False)
    world.lesson("L1", main, [board])
    world.cycle(NOW.replace(minute=3))  # inside the 5-minute grace
    assert world.alert("lesson_not_started", main) is None
    world.cycle(NOW)
    alert = world.alert("lesson_not_started", main)
    assert alert["state"] == "firing" and alert["detail"]["lesson_id"] == "L1"
    assert world.alert("receivers_not_joined", board) is None  # nothing to join yet
    world.cycle(NOW.replace(minute=45))  # the slot is over
    assert world.alert("lesson_not_started", main)["state"] == "resolved"


def test_receivers_not_joined(world):
    s1, s2 = world.school(), world.school()
    main = world.registry.device(s1, "recorder")
    joined, absent = world.registry.device(s2, "board"), world.registry.device(s2, "board")
    world.state(main, streaming=True, recording=True)
    world.lesson("L1", main, [joined, absent])
    world.event(main, "stream_start", NOW.replace(minute=0), "L1")
    world.event(joined, "lesson_start", NOW.replace(minute=1), "L1")
    world.cycle(NOW)
    assert world.alert("receivers_not_joined", joined) is None
    assert world.alert("receivers_not_joined", absent)["state"] == "firing"
    assert world.alert("lesson_not_started", main) is None


def test_stream_dropped_mid_lesson(world):
    school = world.school()
    main = world.registry.device(school, "recorder")
    world.lesson("L1", main, [])
    world.event(main, "stream_start", NOW.replace(minute=0), "L1")
    world.event(main, "stream_stop", NOW.replace(minute=19, second=50), "L1")
    world.state(main, streaming=False, recording=True)
    world.cycle(NOW)
    assert world.alert("stream_dropped", main)["state"] == "pending"
    world.cycle(NOW + timedelta(seconds=61))
    assert world.alert("stream_dropped", main)["state"] == "firing"


@pytest.mark.parametrize(("rule", "values", "for_s"), [
    ("camera_lost", {"cameras": _cameras(online=False), "storage_free_gb": 500}, 120),
    ("storage_low", {"cameras": _cameras(), "storage_free_gb": 12.5}, 600),
    ("video_brightness", {"cameras": _cameras(brightness=12), "storage_free_gb": 500}, 120),
    ("video_brightness", {"cameras": _cameras(brightness=240), "storage_free_gb": 500}, 120),
    ("video_frozen", {"cameras": _cameras(frozen_frames=10), "storage_free_gb": 500}, 60),
])
def test_recorder_health(world, rule, values, for_s):
    school = world.school()
    recorder = world.registry.device(school, "recorder")
    world.state(recorder, streaming=True, recording=True, last_values={"kind": "recorder", **values})
    _fires(world, rule, recorder, for_s)
    others = {a["rule_id"] for a in world.alerts()} - {rule}
    assert not others


def test_video_checks_only_while_the_recorder_works(world):
    school = world.school()
    recorder = world.registry.device(school, "recorder")
    world.state(recorder, streaming=False, recording=False,
                last_values={"cameras": _cameras(brightness=5), "storage_free_gb": 500})
    world.cycle(NOW)
    assert world.alerts() == []  # a dark empty classroom is not a fault


def test_dropped_frames_high(world):
    school = world.school()
    recorder = world.registry.device(school, "recorder")
    world.state(recorder, streaming=True, recording=True, last_values={"cameras": _cameras(), "storage_free_gb": 500})
    for minutes_ago, dropped in ((4, 100), (2, 250), (0, 700)):
        world.db.execute(
            """INSERT INTO recorder_telemetry (device_id, time, seq, recording, streaming, dropped_frames,
                                               cameras_total, cameras_online)
               VALUES (%s, %s, %s, true, true, %s, 2, 2)""",
            (recorder, NOW - timedelta(minutes=minutes_ago), 10 - minutes_ago, dropped))
    world.cycle(NOW)
    alert = world.alert("dropped_frames_high", recorder)
    assert alert["state"] == "firing" and alert["detail"]["dropped"] == 600


def _board_reading(world, board, **kw) -> None:
    reading = {"cpu_temp_c": 55.0, "disk_used_pct": 40.0, "error_codes": [], **kw}
    world.state(board, last_seen=NOW - timedelta(minutes=1), last_values={"kind": "board", "active_use_s": 100})
    world.db.execute(
        """INSERT INTO board_telemetry (device_id, time, seq, power_on, screen_on, active_use_s, cpu_temp_c,
                                        disk_used_pct, error_codes)
           VALUES (%s, %s, 1, true, true, 100, %s, %s, %s)""",
        (board, NOW - timedelta(minutes=1), reading["cpu_temp_c"], reading["disk_used_pct"], reading["error_codes"]))


@pytest.mark.parametrize(("rule", "reading", "for_s"), [
    ("board_overheat", {"cpu_temp_c": 91.0}, 600),
    ("board_disk_full", {"disk_used_pct": 97.5}, 0),
    ("board_error_codes", {"error_codes": ["E1024"]}, 0),
])
def test_board_health(world, rule, reading, for_s):
    school = world.school()
    board = world.registry.device(school, "board")
    _board_reading(world, board, **reading)
    world.cycle(NOW)
    assert world.alert(rule, board) is not None
    world.db.execute("UPDATE patrol_rule SET last_evaluated_at = NULL")  # board checks run every 5 minutes
    world.cycle(NOW + timedelta(seconds=for_s + 1))
    assert world.alert(rule, board)["state"] == "firing"
    assert {a["rule_id"] for a in world.alerts()} == {rule}


def test_board_unused_is_a_finding_not_a_page(world):
    school = world.school()
    idle, used = world.registry.device(school, "board"), world.registry.device(school, "board")
    for board, counter_now in ((idle, 5000), (used, 9000)):
        world.db.execute(
            """INSERT INTO board_telemetry (device_id, time, seq, power_on, screen_on, active_use_s)
               VALUES (%s, %s, 1, true, true, 5000)""", (board, NOW - timedelta(days=30)))
        world.state(board, last_values={"kind": "board", "active_use_s": counter_now})
    world.cycle(NOW, only={"board_unused"})
    alert = world.alert("board_unused", idle)
    assert alert["state"] == "firing" and alert["severity"] == "info"
    assert world.alert("board_unused", used) is None
    page = world.db.execute("SELECT page FROM patrol_rule WHERE id = 'board_unused'").fetchone()["page"]
    assert page is False


def _gateway(world, **values) -> str:
    school = world.school()
    gateway = world.registry.device(school, "gateway")
    lv = {"kind": "gateway", "rx_mbps": 100, "uplink_mbps": 1000, "latency_ms": 8, "loss_pct": 0.1,
          "aps_total": 20, "aps_online": 20, **values}
    world.state(gateway, last_values=lv)
    return gateway


def test_uplink_saturated_for_a_while(world):
    gateway = _gateway(world, rx_mbps=950)
    fired = _fires(world, "uplink_saturated", gateway, 900)
    assert fired["detail"]["rx_mbps"] == 950


@pytest.mark.parametrize(("rule", "values", "severity"), [
    ("network_loss", {"loss_pct": 3.0}, "warning"),
    ("network_loss", {"loss_pct": 15.0}, "major"),
    ("network_latency", {"latency_ms": 150}, "warning"),
    ("network_latency", {"latency_ms": 500}, "major"),
])
def test_network_quality_bands(world, rule, values, severity):
    gateway = _gateway(world, **values)
    assert _fires(world, rule, gateway, 300)["severity"] == severity


def test_many_aps_offline(world):
    gateway = _gateway(world, aps_online=12)
    _fires(world, "aps_offline", gateway, 300)
    few = _gateway(world, aps_online=18)  # two of twenty: below both thresholds
    world.cycle(NOW)
    assert world.alert("aps_offline", few) is None


def test_flapping(world):
    school = world.school()
    steady, flapping = world.registry.device(school, "board"), world.registry.device(school, "board")
    for board, changes in ((steady, 2), (flapping, 6)):
        world.state(board)
        for i in range(changes):
            world.db.execute("INSERT INTO device_status_change (device_id, time, online, reason) VALUES (%s,%s,%s,'will')",
                             (board, NOW - timedelta(minutes=5 * i + 1), i % 2 == 0))
    world.cycle(NOW)
    assert world.alert("flapping", flapping)["detail"]["changes"] == 6
    assert world.alert("flapping", steady) is None


def test_scope_override_changes_a_threshold_and_can_disable(world):
    strict, relaxed = world.school(), world.school()
    values = {"cameras": _cameras(), "storage_free_gb": 30}
    recorders = {s: world.registry.device(s, "recorder") for s in (strict, relaxed)}
    for r in recorders.values():
        world.state(r, streaming=True, last_values=values)
    set_override(world.db, "storage_low", "school", relaxed, {"min_free_gb": 10})
    world.cycle(NOW)
    assert world.alert("storage_low", recorders[strict]) is not None
    assert world.alert("storage_low", recorders[relaxed]) is None
    set_override(world.db, "storage_low", "county", "421303", {"enabled": False})
    world.cycle(NOW + timedelta(seconds=15))
    assert world.alert("storage_low", recorders[strict]) is None  # the pending one was dropped
    assert json.loads(json.dumps(world.alerts())) == []
