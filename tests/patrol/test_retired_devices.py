"""A device taken out of service takes its alerts with it: they resolve at its retirement, whoever
retired it (sql/029), and the patrol raises none for it afterwards."""

from datetime import timedelta

from tests.patrol.conftest import LESSON_TIME


def test_retiring_a_device_resolves_its_open_alerts_and_the_patrol_leaves_it_alone(world):
    school = world.school()
    retired, kept = world.registry.device(school), world.registry.device(school)
    for board in (retired, kept):
        world.offline(board, LESSON_TIME - timedelta(hours=1))
    world.cycle(LESSON_TIME)
    assert {a["device_id"] for a in world.alerts("device_offline") if a["state"] != "resolved"} == {retired, kept}

    world.db.execute("UPDATE device_all SET retired_at = now() WHERE id = %s", (retired,))
    by_device = {a["device_id"]: a for a in world.alerts("device_offline")}
    assert (by_device[retired]["state"], by_device[retired]["resolution"]) == ("resolved", "device retired")
    assert by_device[kept]["state"] != "resolved"

    world.cycle(LESSON_TIME + timedelta(minutes=10))  # still offline, but out of service: no new alert
    assert [a["state"] for a in world.alerts("device_offline") if a["device_id"] == retired] == ["resolved"]
