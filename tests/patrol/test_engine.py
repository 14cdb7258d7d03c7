"""The alert lifecycle: school hours, holidays, maintenance, inhibition, silences, resolution, last wills."""

from datetime import UTC, datetime, timedelta

from core.calendar import load_calendar
from patrol.alerts import acknowledge, create_maintenance, create_silence, get_alert, update_rule
from patrol.engine import device_went_offline
from tests.patrol.conftest import LESSON_TIME, TZ

NOW = LESSON_TIME


def _offline_board(world) -> tuple[str, str]:
    school = world.school()
    board = world.registry.device(school, "board")
    world.offline(board, NOW - timedelta(hours=1))
    return school, board


def test_nights_are_not_faults(world):
    _, board = _offline_board(world)
    world.cycle(datetime(2025, 11, 26, 22, 0, tzinfo=TZ))
    assert world.alerts() == []


def test_weekends_and_holidays_are_not_faults(world):
    _, board = _offline_board(world)
    world.cycle(datetime(2025, 11, 29, 10, 20, tzinfo=TZ))  # Saturday
    assert world.alerts() == []
    world.registry.calendar_day("2025-11-26", name="校庆")
    world.cycle(NOW)
    assert world.alerts() == []


def test_a_fired_alert_waits_overnight_and_resolves_when_the_device_returns(world):
    _, board = _offline_board(world)
    world.cycle(NOW)
    assert world.alert("device_offline", board)["state"] == "firing"
    night = datetime(2025, 11, 26, 22, 0, tzinfo=TZ)
    world.cycle(night)
    assert world.alert("device_offline", board)["state"] == "firing"  # still down: not resolved
    world.state(board, online=True, status_time=night, last_seen=night)
    world.cycle(night + timedelta(minutes=1))
    resolved = world.alert("device_offline", board)
    assert resolved["state"] == "resolved" and resolved["resolution"] == "condition cleared"


def test_maintenance_window_opens_nothing(world):
    school, board = _offline_board(world)
    create_maintenance(world.db, "school", school, NOW - timedelta(hours=1), NOW + timedelta(hours=2), "换网线")
    world.cycle(NOW)
    assert world.alerts() == []


def test_a_dead_gateway_is_one_incident(world):
    school = world.school()
    gateway = world.registry.device(school, "gateway")
    boards = [world.registry.device(school, "board") for _ in range(3)]
    recorder = world.registry.device(school, "recorder")
    for device in [gateway, *boards, recorder]:
        world.offline(device, NOW - timedelta(minutes=30))
    world.cycle(NOW)
    root = world.alert("gateway_offline", gateway)
    assert root["state"] == "firing"
    suppressed = [a for a in world.alerts() if a["id"] != root["id"]]
    assert len(suppressed) == 4 and all(a["inhibited_by"] == root["id"] for a in suppressed)
    incident = get_alert(world.db, root["id"])
    assert {a["device_id"] for a in incident["suppressed"]} == {*boards, recorder}
    # The network is back but one board is still dead: its own alert stands alone now.
    for device in [gateway, *boards[1:], recorder]:
        world.state(device)
    world.cycle(NOW + timedelta(minutes=1))
    assert world.alert("gateway_offline", gateway)["state"] == "resolved"
    assert world.alert("device_offline", boards[0])["inhibited_by"] is None


def test_a_recorder_down_explains_its_lesson_alerts(world):
    school = world.school()
    recorder = world.registry.device(school, "recorder")
    world.lesson("L1", recorder, [])
    world.event(recorder, "stream_start", NOW.replace(minute=0), "L1")
    world.state(recorder, online=False, status_time=NOW.replace(minute=10), streaming=True)
    world.cycle(NOW)
    world.cycle(NOW + timedelta(minutes=2))
    down = world.alert("device_offline", recorder)
    assert world.alert("stream_dropped", recorder)["inhibited_by"] == down["id"]


def test_silence_mutes_but_keeps_the_alert(world):
    school, board = _offline_board(world)
    silence = create_silence(world.db, ends_at=NOW + timedelta(hours=1), reason="已报修", created_by="ops",
                             starts_at=NOW - timedelta(minutes=1), scope_level="school", scope_code=school)
    world.cycle(NOW)
    alert = world.alert("device_offline", board)
    assert alert["state"] == "firing" and alert["silence_id"] == silence
    world.cycle(NOW + timedelta(hours=2))
    assert world.alert("device_offline", board)["silence_id"] is None


def test_acknowledged_alert_still_resolves(world):
    _, board = _offline_board(world)
    world.cycle(NOW)
    alert = world.alert("device_offline", board)
    assert acknowledge(world.db, alert["id"], "ops", NOW)["state"] == "acknowledged"
    assert acknowledge(world.db, alert["id"], "ops", NOW) is None
    world.state(board)
    world.cycle(NOW + timedelta(minutes=1))
    assert world.alert("device_offline", board)["state"] == "resolved"


def test_count_and_last_seen_grow_on_one_alert(world):
    _, board = _offline_board(world)
    for minutes in range(3):
        world.cycle(NOW + timedelta(minutes=minutes))
    alerts = world.alerts()
    assert len(alerts) == 1 and alerts[0]["count"] == 3
    assert alerts[0]["last_seen"] == NOW + timedelta(minutes=2)


def _written_by(world, alert_id: int) -> str:
    """The transaction that last wrote the alert's row."""
    return world.db.execute("SELECT xmin::text AS x FROM alert WHERE id = %s", (alert_id,)).fetchone()["x"]


def test_an_alert_seen_again_is_not_written_again(world):
    _, board = _offline_board(world)
    world.cycle(NOW)
    alert = world.alert("device_offline", board)
    written = _written_by(world, alert["id"])
    kept = world.cycle(NOW + timedelta(minutes=1))  # the board not looked at: its condition as before
    assert (kept.candidates, kept.hits, kept.open_alerts) == (0, 1, 1)
    world.offline(board, NOW - timedelta(hours=1))  # its state written again, the same
    world.cycle(NOW + timedelta(minutes=2))  # looked at: the same condition
    assert _written_by(world, alert["id"]) == written
    seen = world.alert("device_offline", board)
    assert (seen["state"], seen["count"], seen["last_seen"]) == ("firing", 3, NOW + timedelta(minutes=2))


def test_a_new_detail_is_written_and_the_count_goes_on(world):
    gateway = world.registry.device(world.school(), "gateway")
    values = {"kind": "gateway", "rx_mbps": 100, "uplink_mbps": 1000, "latency_ms": 8, "aps_total": 20,
              "aps_online": 20}
    world.state(gateway, last_values={**values, "loss_pct": 5.0})
    world.cycle(NOW)
    world.cycle(NOW + timedelta(minutes=1))
    world.state(gateway, last_values={**values, "loss_pct": 25.0})
    world.cycle(NOW + timedelta(minutes=2))
    alert = world.alert("network_loss", gateway)
    assert (alert["detail"], alert["severity"]) == ({"loss_pct": 25.0}, "major")
    assert (alert["count"], alert["last_seen"]) == (3, NOW + timedelta(minutes=2))


def test_outside_its_hours_an_open_alert_is_not_seen_again(world):
    _, board = _offline_board(world)
    world.cycle(NOW)
    world.cycle(NOW + timedelta(minutes=1))
    for minute in (45, 46):  # the break after the period: device_offline counts in lessons only
        world.cycle(NOW.replace(minute=minute))
    alert = world.alert("device_offline", board)
    assert (alert["state"], alert["count"], alert["last_seen"]) == ("firing", 2, NOW + timedelta(minutes=1))
    for minute in (55, 56):  # the next period
        world.cycle(NOW.replace(minute=minute))
    alert = world.alert("device_offline", board)
    assert (alert["count"], alert["last_seen"]) == (4, NOW.replace(minute=56))


def test_in_a_maintenance_window_an_open_alert_is_not_seen_again(world):
    _, board = _offline_board(world)
    world.cycle(NOW)
    world.cycle(NOW + timedelta(minutes=1))
    create_maintenance(world.db, "device", board, NOW + timedelta(seconds=90), NOW + timedelta(hours=1), "换屏")
    world.cycle(NOW + timedelta(minutes=2))
    world.cycle(NOW + timedelta(minutes=3))
    alert = world.alert("device_offline", board)
    assert (alert["state"], alert["count"], alert["last_seen"]) == ("firing", 2, NOW + timedelta(minutes=1))


def test_a_resolved_alert_keeps_the_figures_it_reached(world):
    school = world.school()
    retired, back = (world.registry.device(school, "board") for _ in range(2))
    for board in (retired, back):
        world.offline(board, NOW - timedelta(hours=1))
    for minutes in range(3):
        world.cycle(NOW + timedelta(minutes=minutes))
    world.db.execute("UPDATE device_all SET retired_at = %s WHERE id = %s", (NOW + timedelta(seconds=150), retired))
    world.state(back)
    for minutes in (3, 4):
        world.cycle(NOW + timedelta(minutes=minutes))
    for board, resolution in ((retired, "device retired"), (back, "condition cleared")):
        alert = world.alert("device_offline", board)
        assert (alert["state"], alert["resolution"]) == ("resolved", resolution)
        assert (alert["count"], alert["last_seen"]) == (3, NOW + timedelta(minutes=2))


def test_last_will_opens_the_alert_at_once(world):
    school = world.school()
    gateway = world.registry.device(school, "gateway")
    world.state(gateway)
    update_rule(world.db, "gateway_offline", for_s=0)
    will_at = NOW - timedelta(seconds=3)
    device_went_offline(world.db, gateway, will_at, NOW, load_calendar(world.db))
    alert = world.alert("gateway_offline", gateway)
    assert alert["state"] == "firing" and alert["first_seen"] == will_at.astimezone(UTC)


def test_a_rule_switched_back_on_looks_at_every_device_again(world):
    _, board = _offline_board(world)
    world.cycle(NOW)
    update_rule(world.db, "device_offline", enabled=False)
    world.cycle(NOW + timedelta(minutes=1))
    assert world.alert("device_offline", board)["resolution"] == "rule disabled"
    update_rule(world.db, "device_offline", enabled=True)
    # the board has not changed since the rule last looked at it, and has no alert open: still found
    result = world.cycle(NOW + timedelta(minutes=2))
    assert "offline" in result.whole_fleet
    assert world.alert("device_offline", board)["state"] == "firing"
