"""The smart-patrol page: operations staff see the patrol's alerts and act on them through the API.

Screenshots are saved as in test_cockpit (COCKPIT_REFRESH_SCREENSHOTS=1 refreshes docs/screenshots/).
"""

from datetime import datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.rows import dict_row
from selenium.webdriver.common.by import By

from core.calendar import load_calendar
from core.settings import platform_settings
from patrol.engine import run_cycle
from tests.dashboard.test_cockpit import _downloaded

pytestmark = pytest.mark.browser

ZENGDU = "421303"


def _local() -> ZoneInfo:
    """The schools' time zone."""
    return ZoneInfo(platform_settings().timezone)


def _last_school_morning(calendar) -> datetime:
    """10:20 on the last school day before today: the third lesson period is running."""
    day = datetime.now(_local()).date() - timedelta(days=1)
    while not calendar.is_school_day(day):
        day -= timedelta(days=1)
    return datetime.combine(day, clock_time(10, 20), _local())


@pytest.fixture(scope="module")
def incidents(cockpit_stack):
    """A school's network down, and boards of another Zengdu school offline, an hour before a patrol cycle."""
    with psycopg.connect(cockpit_stack.database_url, row_factory=dict_row, autocommit=True) as conn:
        calendar = load_calendar(conn)
        at = _last_school_morning(calendar)
        gateway = conn.execute("SELECT id FROM device WHERE school_code = %s AND kind = 'gateway'",
                               (cockpit_stack.school,)).fetchone()["id"]
        boards = [r["id"] for r in conn.execute(
            """SELECT d.id FROM device d JOIN school s ON s.code = d.school_code
               WHERE s.county_code = %s AND s.code <> %s AND d.kind = 'board' ORDER BY d.id LIMIT 2""",
            (ZENGDU, cockpit_stack.school))]
        conn.execute("UPDATE device_state SET online = false, status_time = %s WHERE device_id = ANY(%s)",
                     (at - timedelta(hours=1), [gateway, *boards]))
        run_cycle(conn, at, calendar, only={"gateway_offline", "device_offline"})
        ids = [r["id"] for r in conn.execute(
            "SELECT id FROM alert WHERE device_id = ANY(%s) AND state = 'firing' ORDER BY id", ([gateway, *boards],))]
    assert len(ids) == 3, "the patrol fires for the gateway and both boards"
    return {"gateway": gateway, "boards": boards}


def test_operations_acknowledge_dispatch_and_run_a_round(cockpit, cockpit_stack, incidents):
    cockpit.login("ops-zengdu")
    cockpit.open("/patrol")
    cockpit.wait_text("patrol-scope-name", lambda s: s == "曾都区")
    assert int(cockpit.wait_text("patrol-critical", lambda s: s not in ("", "0"))) >= 1
    listed = cockpit.wait_text("patrol-alert-list", lambda s: "学校网络中断" in s and "设备离线" in s)
    assert "告警中(待确认)" in listed and "待确认" not in listed.replace("告警中(待确认)", "")
    rows = cockpit.driver.find_elements(By.CSS_SELECTOR, "#patrol-alert-list tbody tr")
    assert int(cockpit.text("patrol-open")) == len(rows)  # the tile counts the list below it

    cockpit.click(css="#patrol-alert-list button[id*='patrol-ack']")
    cockpit.wait_text("patrol-message", lambda s: s.startswith("已确认告警"))
    cockpit.wait_text("patrol-alert-list", lambda s: "已确认(处理中)" in s)
    with psycopg.connect(cockpit_stack.database_url) as conn:
        acked = conn.execute("SELECT device_id, acked_by FROM alert WHERE state = 'acknowledged'").fetchall()
    assert (incidents["gateway"], "ops-zengdu") in acked and {who for _, who in acked} == {"ops-zengdu"}

    cockpit.click(css="#patrol-alert-list button[id*='patrol-order']")
    message = cockpit.wait_text("patrol-message", lambda s: "工单" in s)
    order = message.rsplit(" ", 1)[-1]
    cockpit.wait_text("patrol-order-list", lambda s: s.split("\n")[1].startswith(order) and "待处理" in s,
                      f"work order {order} ({message}) is not in the list: {cockpit.text('patrol-order-list')}")

    cockpit.click("patrol-run")
    cockpit.wait_text("patrol-message", lambda s: s.startswith("巡检完成"))
    cockpit.wait_text("patrol-round-list", lambda s: "手动" in s)
    cockpit.click(css="#patrol-round-list button.export")
    assert _downloaded(cockpit.driver.downloads, "xlsx").read_bytes()[:2] == b"PK"
    assert cockpit.driver.find_elements(By.CSS_SELECTOR, ".error") == []
    cockpit.wait_charts()
    assert cockpit.screenshot("patrol").stat().st_size > 50_000


def test_a_viewer_sees_alerts_but_no_actions(cockpit, cockpit_stack, incidents):
    cockpit.login("school")
    cockpit.open("/patrol")
    cockpit.wait_text("patrol-alert-list", lambda s: "学校网络中断" in s)
    assert cockpit.driver.find_elements(By.CSS_SELECTOR, "#patrol-alert-list button") == []
    assert not cockpit.find("patrol-run").is_displayed()


def test_the_overview_counts_the_open_alerts_and_lists_the_newest(cockpit, incidents):
    cockpit.login("admin")
    assert int(cockpit.wait_text("overview-alerts", lambda s: s not in ("", "0"))) >= 3
    cockpit.wait_text("overview-feed-list", lambda s: "学校网络中断" in s and "设备离线" in s)
    cockpit.wait_charts()
    assert cockpit.screenshot("overview").stat().st_size > 50_000  # the overview with its alert feed filled
    cockpit.click(css="#overview-feed-list a")
    cockpit.wait_text("device-id", lambda s: s in (incidents["gateway"], *incidents["boards"]))
