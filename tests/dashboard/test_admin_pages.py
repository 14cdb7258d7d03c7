"""The administration pages (管理) in headless Chromium against the API and the seeded demo province.

A city's administrator sees their city's users and schools only, registers a device and is shown its
MQTT credentials once, retires it, and sees the API refuse a school in another city's county, beside the
form. A manager has no administration link, and /admin tells them they may not, in the API's words. An
import's dry run shows the row it refuses and keeps Apply disabled; a clean one applies and shows what
changed and the generated password. An account with a generated password must choose its own at login.

What these tests create is kept small and out of the figures the other browser tests read (accounts, one
device that ends retired), and named after this module so that nothing else in the demo is touched.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from openpyxl import Workbook
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

pytestmark = pytest.mark.browser

SUIZHOU, WUHAN_COUNTY = "421300", "420102"  # 随州市; 江岸区, a county of 武汉市
CITY_ADMIN, CITY_ADMIN_PASSWORD = "suizhou-admin", "Lotus7Harbor42"


@contextmanager
def _api(stack, username: str, password: str) -> Iterator[httpx.Client]:
    """An API client logged in as this user (for setting up what the test is not about)."""
    with httpx.Client(base_url=stack.api_url, timeout=30) as client:
        r = client.post("/api/v1/auth/token", data={"username": username, "password": password})
        r.raise_for_status()
        client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        yield client


@pytest.fixture(scope="module")
def city_admin(cockpit_stack) -> tuple[str, str]:
    """An administrator of 随州市 with a password of their own (created by the province's admin)."""
    from ops.seed.generator import DEMO_PASSWORD

    with _api(cockpit_stack, "admin", DEMO_PASSWORD) as admin:
        r = admin.post("/api/v1/admin/users", json={
            "username": CITY_ADMIN, "display_name": "随州市管理员", "role": "admin", "scope_level": "city",
            "scope_code": SUIZHOU, "password": "Initial9Pass77"})
        assert r.status_code in (201, 409), r.text  # 409: made by an earlier test of this session
        if r.status_code == 409:
            admin.post(f"/api/v1/admin/users/{CITY_ADMIN}/password", json={"password": "Initial9Pass77"})
    with _api(cockpit_stack, CITY_ADMIN, "Initial9Pass77") as me:
        if me.get("/api/v1/auth/me").json().get("must_change_password"):
            r = me.post("/api/v1/auth/password", json={"current_password": "Initial9Pass77",
                                                       "new_password": CITY_ADMIN_PASSWORD})
            assert r.is_success, r.text
    return CITY_ADMIN, CITY_ADMIN_PASSWORD


def sign_in(cockpit, username: str, password: str) -> None:
    """Open the landing page as this user, who has a password of their own (see `Cockpit.open_as`)."""
    cockpit.open_as(username, password=password)


def fill(cockpit, element_id: str, text: str) -> None:
    """Type into a form field (emptied first)."""
    box = cockpit.find(element_id)
    box.clear()
    box.send_keys(text)


def choose(cockpit, radio_id: str, value: str) -> None:
    """Pick a value of a row of radio buttons."""
    cockpit.click(css=f"#{radio_id} input[value='{value}']")


def open_section(cockpit, path: str, ready: str) -> None:
    """Open an administration section and wait until the gate has let the user in (its form is shown)."""
    cockpit.open(path)
    cockpit.until(lambda d: d.find_element(By.ID, ready).is_displayed(), f"{path}: the form was not shown")


def cells(cockpit, table_id: str, column: int) -> list[str]:
    """The texts of one column of a table's body, once the table is there."""
    def read(d):
        try:
            rows = d.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr")
            return [r.find_elements(By.TAG_NAME, "td")[column].text for r in rows] or False
        except (NoSuchElementException, StaleElementReferenceException, IndexError):
            return False
    return cockpit.until(read, f"#{table_id} has no rows")


def test_a_city_admin_sees_only_their_city_and_the_api_refuses_a_school_elsewhere(cockpit, city_admin):
    sign_in(cockpit, *city_admin)
    cockpit.click("app-nav-admin")
    users = cockpit.wait_text("admin-users-table", lambda s: "zengdu" in s, "the city's users are not listed")
    names = set(cells(cockpit, "admin-users-table", 0))
    assert {"suizhou", "zengdu", CITY_ADMIN} <= names
    assert not names & {"admin", "province", "wuhan"}, f"users outside 随州市 listed: {users}"
    cockpit.wait_settled()
    assert cockpit.screenshot("admin-users").stat().st_size > 0

    cockpit.click("admin-tab-schools")
    cockpit.wait_text("admin-schools-table", lambda s: "曾都区" in s)
    counties = cells(cockpit, "admin-schools-table", 2)
    assert all("(4213" in c for c in counties), f"schools outside 随州市 listed: {counties}"

    fill(cockpit, "admin-schools-code", "4201029901")
    fill(cockpit, "admin-schools-name", "武汉市江岸区越界测试小学")
    fill(cockpit, "admin-schools-county_code", WUHAN_COUNTY)
    choose(cockpit, "admin-schools-locale", "urban")
    choose(cockpit, "admin-schools-stage", "primary")
    for name, value in (("classes", "6"), ("students", "240"), ("teachers", "18"), ("uplink_mbps", "100")):
        fill(cockpit, f"admin-schools-{name}", value)
    cockpit.click("admin-schools-create")
    refused = cockpit.wait_text("admin-schools-error", lambda s: "403" in s, "the refusal was not shown")
    assert refused.startswith("没有权限") and "scope" in refused, refused  # the API's own reason beside the form
    assert cockpit.find("admin-schools-create").is_displayed()  # the form stays, with what was typed
    assert cockpit.find("admin-schools-code").get_attribute("value") == "4201029901"
    assert cockpit.screenshot("admin-schools").stat().st_size > 0


def test_a_city_admin_registers_a_device_sees_its_credentials_once_and_retires_it(cockpit, cockpit_stack,
                                                                                   city_admin):
    with _api(cockpit_stack, *city_admin) as me:
        school = me.get("/api/v1/admin/schools", params={"limit": 1}).json()["items"][0]["code"]
    device = f"B{school}-ADM"
    sign_in(cockpit, *city_admin)
    open_section(cockpit, "/admin/devices", "admin-devices-create")
    fill(cockpit, "admin-devices-id", device)
    choose(cockpit, "admin-devices-kind", "board")
    fill(cockpit, "admin-devices-school_code", school)
    fill(cockpit, "admin-devices-room", "管理测试教室")
    fill(cockpit, "admin-devices-vendor", "希沃")
    fill(cockpit, "admin-devices-model", "MC86")
    cockpit.click("admin-devices-create")
    shown = cockpit.wait_text("admin-devices-secret", lambda s: device in s, "no credentials were shown")
    assert "MQTT 密码" in shown and "仅显示这一次" in shown
    password = shown.split("MQTT 密码")[1].split("\n")[1].strip()
    assert len(password) >= 16 and password != device, shown
    assert cockpit.screenshot("admin-devices").stat().st_size > 0

    fill(cockpit, "admin-devices-retire_id", device)
    fill(cockpit, "admin-devices-reason", "浏览器测试退役")
    cockpit.click("admin-devices-retire")
    cockpit.wait_text("admin-devices-retire-done", lambda s: device in s, "the retirement was not confirmed")
    choose(cockpit, "admin-devices-by-state", "true")
    fill(cockpit, "admin-devices-q", device + Keys.ENTER)
    cockpit.wait_text("admin-devices-table", lambda s: device in s and "浏览器测试退役" in s,
                      "the retired device is not listed with its reason")
    assert password not in cockpit.text("admin-devices-table")  # the list never shows a credential


def test_a_manager_has_no_administration_and_is_told_so(cockpit):
    cockpit.login("suizhou")
    cockpit.find("app-nav-overview")
    assert cockpit.driver.find_elements(By.ID, "app-nav-admin") == []
    cockpit.open("/admin")
    denied = cockpit.wait_text("admin-denied", lambda s: "403" in s, "/admin did not say no")
    assert denied.startswith("没有管理权限") and "manager" in denied  # the API's reason names the role
    assert not cockpit.find("admin-users-create").is_displayed()


def _workbook(path, rows: list[list]) -> str:
    book = Workbook()
    sheet = book.active
    sheet.title = "用户"
    sheet.append(["用户名", "姓名", "角色", "范围级别", "范围代码", "初始密码"])
    for row in rows:
        sheet.append(row)
    book.save(path)
    return str(path)


def test_an_import_is_tried_first_and_applied_only_when_clean(cockpit, city_admin, tmp_path):
    sign_in(cockpit, *city_admin)
    open_section(cockpit, "/admin/import", "admin-import-apply")
    upload = cockpit.driver.find_element(By.CSS_SELECTOR, "#admin-import-upload input[type=file]")
    upload.send_keys(_workbook(tmp_path / "bad.xlsx", [["import-viewer", "导入测试", "大王", "市", SUIZHOU, ""]]))
    cockpit.wait_text("admin-import-error-table", lambda s: "角色" in s, "the refused row was not reported")
    [row] = cockpit.driver.find_elements(By.CSS_SELECTOR, "#admin-import-error-table tbody tr")
    sheet, number, column, _reason = (td.text for td in row.find_elements(By.TAG_NAME, "td"))
    assert (sheet, number, column) == ("用户", "2", "角色")
    assert not cockpit.find("admin-import-apply").is_enabled()
    assert cockpit.screenshot("admin-import").stat().st_size > 0

    upload = cockpit.driver.find_element(By.CSS_SELECTOR, "#admin-import-upload input[type=file]")
    upload.send_keys(_workbook(tmp_path / "good.xlsx", [["import-viewer", "导入测试", "查看者", "市", SUIZHOU, ""]]))
    cockpit.wait_text("admin-import-verdict", lambda s: "good.xlsx" in s and "检查通过" in s)
    cockpit.until(lambda d: d.find_element(By.ID, "admin-import-apply").is_enabled(), "Apply stayed disabled")
    cockpit.click("admin-import-apply")
    cockpit.wait_text("admin-import-applied-table", lambda s: "用户" in s, "what changed was not shown")
    headers = [th.text for th in cockpit.driver.find_elements(By.CSS_SELECTOR, "#admin-import-applied-table th")]
    users = dict(zip(cells(cockpit, "admin-import-applied-table", 0),
                     cells(cockpit, "admin-import-applied-table", headers.index("新建")), strict=True))
    assert users["用户"] == "1", users
    cockpit.wait_text("admin-import-secret", lambda s: "import-viewer" in s, "the generated password was not shown")
    cockpit.until(lambda d: not d.find_element(By.ID, "admin-import-apply").is_enabled(),
                  "the applied file could be applied again")
    assert cockpit.screenshot("admin-import-applied").stat().st_size > 0


def test_an_account_with_a_generated_password_chooses_its_own_at_login(cockpit, cockpit_stack, city_admin):
    with _api(cockpit_stack, *city_admin) as me:
        r = me.post("/api/v1/admin/users", json={"username": "fresh-viewer", "display_name": "新用户",
                                                 "role": "viewer", "scope_level": "city", "scope_code": SUIZHOU})
        assert r.status_code == 201, r.text
        generated = r.json()["initial_password"]
    cockpit.driver.get(cockpit.stack.url + "/login")
    cockpit.find("login-username").send_keys("fresh-viewer")
    cockpit.find("login-password").send_keys(generated)
    cockpit.click("login-submit")
    cockpit.until(lambda d: d.find_element(By.ID, "login-new").is_displayed(), "no new password was asked for")
    assert cockpit.driver.execute_script("return window.sessionStorage.getItem('session')") in (None, "null")
    cockpit.find("login-new").send_keys("short1")  # the policy refuses it, in the API's words
    cockpit.find("login-repeat").send_keys("short1")
    cockpit.click("login-change-submit")
    cockpit.wait_text("login-change-error", lambda s: "422" in s, "the policy's refusal was not shown")
    fill(cockpit, "login-new", "Meadow5Lantern88")
    fill(cockpit, "login-repeat", "Meadow5Lantern88")
    cockpit.click("login-change-submit")
    cockpit.until(lambda d: d.execute_script("return window.location.pathname") == "/", "did not land")
    cockpit.wait_text("app-user", lambda s: s == "新用户")
