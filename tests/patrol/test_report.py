"""The daily patrol round, its HTML and XLSX reports, and the 巡课 list."""

import io
from datetime import timedelta

from openpyxl import load_workbook

from patrol.report import (
    classrooms_in_session,
    daily_rounds,
    load_round,
    render_html,
    render_xlsx,
    run_round,
)
from patrol.routing import create_team
from tests.patrol.conftest import LESSON_TIME

NOW = LESSON_TIME


def test_round_reports_what_changed_since_the_last(world):
    school = world.school(name="随州市实验小学")
    boards = [world.registry.device(school, "board") for _ in range(2)]
    for b in boards:
        world.offline(b, NOW - timedelta(hours=1))
    world.cycle(NOW)
    first = load_round(world.db, run_round(world.db, "county", "421303", NOW - timedelta(days=1)))
    assert {f["change"] for f in first["findings"]} == {"new"}
    assert first["checked"]["devices"]["board"] == {"devices": 2, "online": 0}
    world.state(boards[0])
    world.cycle(NOW + timedelta(minutes=1))
    second = load_round(world.db, run_round(world.db, "county", "421303", NOW + timedelta(minutes=2)))
    changes = {f["device_id"]: f["change"] for f in second["findings"]}
    assert changes == {boards[0]: "cleared", boards[1]: "ongoing"}
    assert second["summary"]["open"] == 1 and second["summary"]["cleared"] == 1

    page = render_html(second)
    assert "随州市实验小学" in page and "已消除" in page and "<table>" in page
    book = load_workbook(io.BytesIO(render_xlsx(second)))
    assert book.sheetnames == ["概况", "发现"]
    rows = list(book["发现"].iter_rows(values_only=True))
    assert rows[0][0] == "变化" and len(rows) == 3


def test_daily_rounds_once_per_team_scope_and_day(world):
    school = world.school()
    create_team(world.db, "曾都区运维", "county", "421303")
    create_team(world.db, "校内", "school", school)
    assert len(daily_rounds(world.db, NOW)) == 2
    assert daily_rounds(world.db, NOW + timedelta(hours=1)) == []


def test_classrooms_in_session(world):
    s1, s2 = world.school(), world.school()
    main, board, idle = (world.registry.device(s1, "recorder"), world.registry.device(s2, "board"),
                         world.registry.device(s2, "board"))
    world.lesson("L1", main, [board])
    cams = [{"role": "teacher", "online": True, "brightness": 128, "frozen_frames": 0}]
    world.state(main, streaming=True, recording=True, last_values={"lesson_id": "L1", "cameras": cams})
    world.state(board)
    world.state(idle)
    rows = classrooms_in_session(world.db, "county", "421303", NOW)
    assert [(r["role"], r["device_id"]) for r in rows] == [("main", main), ("receiving", board)]
    assert rows[0]["subject"] == "英语" and rows[0]["cameras"][0]["brightness"] == 128
