"""The phone page (外勤工单): a notice's link, opened logged out on a 390×844 phone, lands on the alert after
the login; the work order is taken, noted, photographed and resolved there. And the login's `next`, which
must never lead to another site.

Screenshots are saved as in test_cockpit (COCKPIT_REFRESH_SCREENSHOTS=1 refreshes docs/screenshots/).
"""

import re
import sys
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import dash
import psycopg
import pytest
from PIL import Image
from psycopg.rows import dict_row
from selenium.webdriver.common.by import By

from dashboard.app import create_app, require_login
from dashboard.landing import login_href, safe_next
from ops.seed.generator import DEMO_PASSWORD
from patrol.notify import Notice

ZENGDU = "421303"
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}


@pytest.mark.parametrize("target", [
    "/field?alert=12", "/", "/patrol?level=county&code=421303", "/device?id=B4213030001-001&period=today"])
def test_the_login_comes_back_to_a_page_of_the_cockpit(target):
    assert safe_next(target) == target


@pytest.mark.parametrize("target", [
    None, "", "field", "https://evil.example/field", "//evil.example/field", "/\\evil.example", "\\\\evil.example",
    "/\t/evil.example", "/\n/evil.example", " /field", "/field x", "javascript:alert(1)", "/login",
    "/login?next=//evil.example", "http:/evil.example", "/" + "a" * 2000, "/x\x7f", ["/field"]])
def test_the_login_never_leads_off_the_site(target):
    assert safe_next(target) == "/"


def test_the_login_page_is_asked_to_come_back():
    assert login_href("/field", "?alert=12") == "/login?next=%2Ffield%3Falert%3D12"
    assert login_href("/", "") == login_href(None, None) == "/login"  # the overview is where it lands anyway
    assert login_href("//evil.example", "") == "/login"


def test_a_page_opened_logged_out_sends_to_a_login_that_keeps_only_a_safe_next():
    if "pages.login" not in sys.modules:
        create_app()  # registers (imports) the pages
    login = sys.modules["pages.login"]
    assert require_login("/field", None, "?alert=12") == "/login?next=%2Ffield%3Falert%3D12"
    assert require_login("/field", {"token": "t"}, "?alert=12") is dash.no_update  # logged in: stays
    kept = {target: login.layout(next=target).children[0].data  # the form's landing, as the layout keeps it
            for target in ("/field?alert=12", "https://evil.example/", "//evil.example", "/\\evil.example")}
    assert kept == {"/field?alert=12": "/field?alert=12", "https://evil.example/": "/", "//evil.example": "/",
                    "/\\evil.example": "/"}


@pytest.fixture
def overheating(cockpit_stack):
    """A Zengdu board overheating: a firing alert nobody has a work order for (removed afterwards, with what
    the test made of it, so the other pages' tests see the demo province as it was)."""
    with psycopg.connect(cockpit_stack.database_url, row_factory=dict_row, autocommit=True) as conn:
        board = conn.execute(
            """SELECT d.id FROM device d JOIN school s ON s.code = d.school_code
               WHERE s.county_code = %s AND s.code <> %s AND d.kind = 'board' ORDER BY d.id DESC LIMIT 1""",
            (ZENGDU, cockpit_stack.school)).fetchone()["id"]
        now = datetime.now(UTC)
        alert = conn.execute(
            """INSERT INTO alert (rule_id, device_id, school_code, state, severity, summary, first_seen, last_seen,
                                  fired_at)
               SELECT 'board_overheat', d.id, d.school_code, 'firing', 'major', '一体机过热(92°C)', %s, %s, %s
               FROM device d WHERE d.id = %s RETURNING *""",
            (now - timedelta(minutes=30), now, now - timedelta(minutes=20), board)).fetchone()
        yield alert
        conn.execute("DELETE FROM work_order WHERE alert_id = %s", (alert["id"],))
        conn.execute("DELETE FROM alert WHERE id = %s", (alert["id"],))


def _fits(driver) -> bool:
    """Nothing wider than the phone's screen: no sideways scrolling."""
    return driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.browser
def test_a_notice_link_on_a_phone_from_login_to_resolved(cockpit, cockpit_stack, overheating, tmp_path):
    driver, alert = cockpit.driver, overheating
    notice = Notice("firing", None, "曾都区某校", [alert]).markdown(ZoneInfo("Asia/Shanghai"), cockpit_stack.url)
    link = re.search(r"\[查看详情\]\((\S+)\)", notice).group(1)  # what the team's chat robot shows
    assert link == f"{cockpit_stack.url}/field?alert={alert['id']}"
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)

    driver.get(link)  # a new tab: no session
    cockpit.until(lambda d: d.execute_script("return location.pathname") == "/login", "no login page")
    assert parse_qs(urlsplit(driver.current_url).query)["next"] == [f"/field?alert={alert['id']}"]
    cockpit.wait_text("login-submit", lambda s: s == "登录")
    assert _fits(driver)
    cockpit.screenshot("field-login")
    cockpit.find("login-username").send_keys("ops-zengdu")
    cockpit.find("login-password").send_keys(DEMO_PASSWORD)
    cockpit.click("login-submit")
    cockpit.until(lambda d: d.execute_script("return location.pathname + location.search")
                  == f"/field?alert={alert['id']}", "the login did not land on the notice's alert")

    cockpit.wait_text("field-what", lambda s: s == "一体机过热(92°C)")
    cockpit.wait_text("field-take", lambda s: s == "接单")
    assert cockpit.find("field-ack").is_displayed() and not cockpit.find("field-work").is_displayed()
    cockpit.wait_text("field-list", lambda s: "一体机过热(92°C)" in s)  # the queue below lists it too
    assert _fits(driver)
    heights = driver.execute_script("return ['field-ack', 'field-take'].map("
                                    "id => document.getElementById(id).getBoundingClientRect().height)")
    assert min(heights) >= 48, f"touch targets too small: {heights}"
    cockpit.screenshot("field-alert")

    cockpit.click("field-take")
    cockpit.wait_text("field-message", lambda s: s.startswith("已接单"))
    order = int(cockpit.text("field-message").rsplit(" ", 1)[-1])
    cockpit.wait_text("field-order", lambda s: "处理中" in s and "ops-zengdu (我)" in s)
    assert not cockpit.find("field-take").is_displayed() and not cockpit.find("field-ack").is_displayed()

    cockpit.find("field-note").send_keys("风扇积灰,已清理")
    cockpit.click("field-note-add")
    cockpit.wait_text("field-notes", lambda s: "风扇积灰,已清理" in s and "ops-zengdu" in s)
    photo = tmp_path / "repair.jpg"
    Image.effect_noise((1600, 1200), 40).convert("RGB").save(photo, "JPEG")  # a phone camera's photo, smaller
    driver.find_element(By.CSS_SELECTOR, "#field-photo input[type=file]").send_keys(str(photo))
    cockpit.wait_text("field-message", lambda s: s == "已上传照片")
    cockpit.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#field-photos img"), "the photo is not shown")
    assert _fits(driver)
    cockpit.screenshot("field-order")

    cockpit.find("field-note").send_keys("清理风扇, 温度恢复到 55°C")
    cockpit.click("field-resolve")
    cockpit.wait_text("field-message", lambda s: s == f"工单 {order} 已处理完成")
    cockpit.wait_text("field-order", lambda s: "已完成" in s)
    cockpit.wait_text("field-resolution", lambda s: "温度恢复到 55°C" in s)
    cockpit.until(lambda d: not d.find_elements(By.ID, f"field-item-order-{order}"), "a resolved order stays queued")
    cockpit.screenshot("field-done")
    with psycopg.connect(cockpit_stack.database_url, row_factory=dict_row) as conn:
        done = conn.execute("SELECT * FROM work_order WHERE id = %s", (order,)).fetchone()
        kept = conn.execute("""SELECT (SELECT count(*) FROM work_order_note WHERE work_order_id = %(o)s) AS notes,
                                      (SELECT max(width) FROM work_order_photo WHERE work_order_id = %(o)s) AS width,
                                      (SELECT state FROM alert WHERE id = %(a)s) AS alert""",
                            {"o": order, "a": alert["id"]}).fetchone()
    assert (done["alert_id"], done["status"], done["assignee"], done["resolution"]) == \
        (alert["id"], "done", "ops-zengdu", "清理风扇, 温度恢复到 55°C")
    assert kept == {"notes": 1, "width": 1280, "alert": "acknowledged"}

    cockpit.click("app-lang-toggle")  # English when chosen
    cockpit.wait_text("field-title", lambda s: s == "Field work")
    cockpit.wait_text("field-order", lambda s: "Done" in s)
