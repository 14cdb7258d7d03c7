"""The 巡课 wall in the browser: classrooms in session with their stills and health badges, one enlarged,
an inspection recorded against the rubric; and the wall's live refresh, which sends only what changed.

Screenshots: inspection-wall.png and inspection-record.png (COCKPIT_REFRESH_SCREENSHOTS=1 writes them to
docs/screenshots/).
"""

import base64
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from selenium.webdriver.common.by import By

from core import contract
from core.contract import CameraSnapshot, Channel
from dashboard.inspection_figures import refresh
from devices.frames import FrameRenderer
from patrol.snapshots import Intake, SnapshotSettings

ZENGDU = "421303"
# The rooms of the first remote lessons taught from 曾都区, and what their cameras show (the fourth is dark).
LOOKS = [set(), {"covered_camera"}, {"frozen_picture"}, set(), {"black_picture"}, {"blurred_picture"}, set(), set()]
BADGES = {"covered_camera": "遮挡", "frozen_picture": "画面冻结", "black_picture": "黑屏", "blurred_picture": "模糊"}


def _stills(device: str, cameras: tuple[str, ...], faults: set[str], now: datetime, frames: FrameRenderer,
            light: float) -> list[tuple[str, bytes, datetime]]:
    """Three stills a minute apart of each camera (three alike ones are a frozen picture)."""
    out = []
    for i in range(3):
        at = now - timedelta(minutes=2 - i)
        for camera in cameras:
            jpeg = frames.still(device, camera, i, faults, light)
            message = CameraSnapshot(v=1, ts=at, seq=i + 1, camera=camera, jpeg=base64.b64encode(jpeg).decode())
            out.append((contract.topic(device, Channel.SNAPSHOT), contract.encode(message), now))
    return out


@pytest.fixture(scope="module")
def in_session(cockpit_stack):
    """Remote lessons of 曾都区 streamed now by their main recorders, every classroom sending stills; the
    recorders' state is put back afterwards."""
    frames, now = FrameRenderer(), datetime.now(UTC)
    with psycopg.connect(cockpit_stack.database_url, row_factory=dict_row, autocommit=True) as conn:
        lessons = conn.execute(  # one lesson each of three recorders: a recorder streams one lesson at a time
            """SELECT * FROM (
                   SELECT DISTINCT ON (l.main_device_id) l.id, l.main_device_id, l.kind
                   FROM remote_lesson l JOIN device d ON d.id = l.main_device_id
                   JOIN school s ON s.code = d.school_code WHERE s.county_code = %s
                   ORDER BY l.main_device_id, l.kind, l.id) x
               ORDER BY kind, id LIMIT 3""", (ZENGDU,)).fetchall()
        saved = conn.execute("SELECT device_id, online, streaming, last_values FROM device_state "
                             "WHERE device_id = ANY(%s)", ([r["main_device_id"] for r in lessons],)).fetchall()
        for lesson in lessons:
            conn.execute("UPDATE device_state SET online = true, streaming = true, last_values = last_values || %s "
                         "WHERE device_id = %s", (Jsonb({"lesson_id": lesson["id"]}), lesson["main_device_id"]))
        rooms = conn.execute(
            """SELECT l.main_device_id AS device_id, 'recorder' AS kind FROM remote_lesson l WHERE l.id = ANY(%(l)s)
               UNION SELECT r.device_id, 'board' FROM remote_lesson_receiver r WHERE r.lesson_id = ANY(%(l)s)
               ORDER BY 1""", {"l": [r["id"] for r in lessons]}).fetchall()
        messages = []
        for i, room in enumerate(rooms):
            cameras = ("students", "teacher") if room["kind"] == "recorder" else ("panorama",)
            light = 0.3 if i == 3 else 1.0  # a dark classroom, and fine
            messages += _stills(room["device_id"], cameras, LOOKS[i % len(LOOKS)], now, frames, light)
        intake = Intake(SnapshotSettings(rate_per_s=0))
        with conn.transaction():
            intake.store(conn, intake.judge(conn, messages))
        yield {"rooms": {r["device_id"]: BADGES[next(iter(LOOKS[i % len(LOOKS)]))] if LOOKS[i % len(LOOKS)]
                         else "画面正常" for i, r in enumerate(rooms)},
               "covered": rooms[1]["device_id"]}
        for row in saved:
            conn.execute("UPDATE device_state SET online = %s, streaming = %s, last_values = %s WHERE device_id = %s",
                         (row["online"], row["streaming"], Jsonb(row["last_values"]), row["device_id"]))
        conn.execute("DELETE FROM inspection")
        conn.execute("DELETE FROM snapshot_camera")
        conn.execute("DELETE FROM snapshot")


@pytest.mark.browser
def test_the_wall_shows_the_classrooms_and_an_inspection_is_recorded(cockpit, cockpit_stack, in_session):
    cockpit.login("zengdu")
    cockpit.open("/inspection")
    cockpit.wait_text("inspection-scope-name", lambda s: s == "曾都区")
    expected = in_session["rooms"]  # with what their badges say; other classrooms may be in session too
    faulty = sum(1 for badge in expected.values() if badge != "画面正常")
    cockpit.wait_text("inspection-problem", lambda s: s.isdigit() and int(s) >= faulty >= 4)
    assert int(cockpit.text("inspection-ok")) >= len(expected) - faulty
    for device, badge in expected.items():
        assert cockpit.wait_text(f"inspection-badge-{device}", lambda s, b=badge: s == b), device
    cockpit.until(lambda d: d.execute_script(
        "return [...document.querySelectorAll('#inspection-grid img')].every(i => i.complete && i.naturalWidth > 0)"),
        "every still is loaded through the cockpit")
    assert cockpit.driver.find_elements(By.CSS_SELECTOR, ".error") == []
    assert cockpit.screenshot("inspection-wall").stat().st_size > 50_000

    cockpit.click(f"inspection-badge-{in_session['covered']}")  # a click anywhere on the tile
    cockpit.wait_text("inspection-detail-title", lambda s: in_session["covered"] in s)
    cockpit.wait_text("inspection-caption", lambda s: "遮挡" in s)
    cockpit.until(lambda d: d.execute_script("const i = document.getElementById('inspection-big');"
                                             "return i.complete && i.naturalWidth === 320"), "the still, large")
    assert "主讲教室" in cockpit.text("inspection-lesson")
    cockpit.click(css="#inspection-rubric input[value='picture_ok']")  # untick: the picture is not fine
    cockpit.find("inspection-note").send_keys("镜头被遮挡,已电话通知学校")
    cockpit.click("inspection-save")
    saved = cockpit.wait_text("inspection-message", lambda s: s.startswith("已记录巡课"))
    assert "发现问题" in saved
    cockpit.wait_text("inspection-history-list", lambda s: "镜头被遮挡" in s)
    cockpit.wait_text("inspection-inspected", lambda s: s == "1")
    with psycopg.connect(cockpit_stack.database_url, row_factory=dict_row) as conn:
        record = conn.execute("SELECT * FROM inspection").fetchone()
    assert (record["device_id"], record["inspector"], record["picture_ok"], record["sound_ok"]) == (
        in_session["covered"], "zengdu", False, True)
    assert record["snapshot_id"] is not None and record["lesson_id"] is not None
    assert cockpit.screenshot("inspection-record").stat().st_size > 50_000


def test_a_refresh_sends_only_the_tiles_that_changed():
    rooms = [{"device_id": f"B42130300{i:02d}-001", "health": "ok", "problems": [], "snapshot_id": i,
              "image": f"/api/v1/snapshots/{i}/image?size=thumb&exp=1&sig={'0' * 32}", "school_name": "一小",
              "room": f"{i}班", "kind": "dedicated", "subject": "音乐", "role": "receiving"} for i in range(200)]
    full, shown = refresh(rooms, "zh", None)
    assert len(full) == 200 and full[0].children[0].src.startswith("/stills/0/image?")
    assert refresh(rooms, "zh", shown) == (None, shown)  # nothing changed: nothing sent
    rooms[7] = {**rooms[7], "snapshot_id": 999, "health": "problem", "problems": ["frozen"]}
    patch, after = refresh(rooms, "zh", shown)
    assert [op["location"] for op in patch.to_plotly_json()["operations"]] == [[7]]
    assert refresh(rooms, "en", after)[0] != patch and len(refresh(rooms, "en", after)[0]) == 200  # words: all
