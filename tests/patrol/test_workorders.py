"""Work orders from an alert to acceptance, and mean times to acknowledge and resolve."""

from datetime import timedelta

import pytest

from patrol.alerts import acknowledge
from patrol.workorders import (
    WorkOrderError,
    list_work_orders,
    open_work_order,
    response_times,
    update_work_order,
)
from tests.patrol.conftest import LESSON_TIME

NOW = LESSON_TIME


def _firing(world) -> tuple[str, dict]:
    school = world.school()
    board = world.registry.device(school, "board")
    world.offline(board, NOW - timedelta(hours=1))
    world.cycle(NOW)
    return board, world.alert("device_offline", board)


def test_work_order_lifecycle(world):
    board, alert = _firing(world)
    order = open_work_order(world.db, alert["id"], "zhang", NOW, assignee="li", deadline=NOW + timedelta(hours=4))
    assert order["status"] == "open" and order["device_id"] == board
    assert world.alert("device_offline", board)["state"] == "acknowledged"
    assert open_work_order(world.db, alert["id"], "zhang", NOW)["id"] == order["id"]  # one open order per alert
    with pytest.raises(WorkOrderError):
        update_work_order(world.db, order["id"], "accepted", "zhang", NOW)
    update_work_order(world.db, order["id"], "in_progress", "li", NOW + timedelta(minutes=10))
    with pytest.raises(WorkOrderError, match="resolution"):
        update_work_order(world.db, order["id"], "done", "li", NOW + timedelta(hours=1))
    done = update_work_order(world.db, order["id"], "done", "li", NOW + timedelta(hours=1), note="更换电源适配器")
    assert done["resolution"] == "更换电源适配器"
    accepted = update_work_order(world.db, order["id"], "accepted", "zhang", NOW + timedelta(hours=2), note="验收通过")
    assert accepted["accepted_by"] == "zhang" and accepted["status"] == "accepted"
    overdue = list_work_orders(world.db, "county", "421303", now=NOW + timedelta(days=1))
    assert [o["overdue"] for o in overdue] == [False]


def test_overdue_work_orders(world):
    _, alert = _firing(world)
    open_work_order(world.db, alert["id"], "zhang", NOW, deadline=NOW + timedelta(hours=1))
    rows = list_work_orders(world.db, "city", "421300", statuses=["open"], now=NOW + timedelta(hours=2))
    assert len(rows) == 1 and rows[0]["overdue"]


def test_mean_time_to_acknowledge_and_resolve(world):
    board, alert = _firing(world)
    acknowledge(world.db, alert["id"], "ops", NOW + timedelta(minutes=10))
    world.state(board)
    world.cycle(NOW + timedelta(minutes=30))
    times = response_times(world.db, "county", "421303", NOW - timedelta(hours=1), NOW + timedelta(hours=1),
                           by="school")
    assert len(times) == 1
    assert times[0]["mtta_s"] == pytest.approx(600) and times[0]["mttr_s"] == pytest.approx(1800)
