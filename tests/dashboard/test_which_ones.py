""""Which ones?" in headless Chromium: from the overview to the schools behind a figure in one click,
for the period chosen, then ordered, filtered, paged and exported; the list's numbers checked against
the database and the API.

Screenshots are saved as in test_cockpit (COCKPIT_REFRESH_SCREENSHOTS=1 refreshes docs/screenshots/).
"""

import re
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.rows import dict_row
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from dashboard.i18n import t
from tests.dashboard.test_cockpit import _download

pytestmark = pytest.mark.browser

PROVINCE, SUIZHOU, ZENGDU = "420000", "421300", "421303"


def _schools(stack, where: str = "true", *params) -> int:
    with psycopg.connect(stack.database_url) as conn:
        return conn.execute(f"SELECT count(*) FROM school WHERE {where}", params).fetchone()[0]  # noqa: S608


def _rows(cockpit) -> list[list[str]]:
    return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in cockpit.driver.find_elements(By.CSS_SELECTOR, "#schools-list tbody tr")]


def _percent(text: str) -> float | None:
    return None if text == "—" else float(text.rstrip("%"))


def _choose(cockpit, dropdown: str, option: str) -> None:
    """Open a dropdown and pick the option with these words."""
    cockpit.click(css=f"#{dropdown} .dash-dropdown, #{dropdown}")
    cockpit.until(lambda d: next((o for o in d.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option")
                                  if o.text == option), False), f"no option {option!r} in #{dropdown}").click()


def test_the_schools_behind_a_ranked_figure_one_click_from_the_overview(cockpit, cockpit_stack):
    cockpit.open_as("admin", "/?period=yesterday")
    cockpit.wait_text("overview-ranking", lambda s: "随州市" in s or "武汉市" in s)
    cockpit.click("overview-ranking-which")  # the one click
    cockpit.until(lambda d: d.execute_script("return window.location.pathname") == "/schools", "not on /schools")
    assert "period=yesterday" in cockpit.driver.current_url and "figure=online_rate" in cockpit.driver.current_url
    total = _schools(cockpit_stack)
    cockpit.wait_text("schools-count", lambda s: s == f"第 1–25 所,共 {total} 所")
    assert cockpit.text("schools-title") == "哪些学校 · 在线率 · 昨天"
    headings = [th.text for th in cockpit.driver.find_elements(By.CSS_SELECTOR, "#schools-list thead th")]
    assert headings[4:7] == ["在线率", "上期", "变化"]  # over a period: the previous one and the change
    rows = _rows(cockpit)
    assert [r[0] for r in rows] == [str(i) for i in range(1, 26)]
    values = [_percent(r[4]) for r in rows]
    valued = [v for v in values if v is not None]
    assert valued == sorted(valued) and values[: len(valued)] == valued  # worst first, no value last

    _choose(cockpit, "schools-order", "最好在前")
    cockpit.wait_text("schools-list", lambda s: _percent(s.split("\n")[1].split()[4]) not in (None, values[0])
                      if len(s.split("\n")) > 1 else False)
    cockpit.until(lambda d: "order=best" in d.current_url, "the order is not kept in the URL")
    best = [_percent(r[4]) for r in _rows(cockpit)]
    assert [v for v in best if v is not None] == sorted((v for v in best if v is not None), reverse=True)

    search = cockpit.find("schools-search")
    search.send_keys("曾都", Keys.ENTER)
    zengdu = _schools(cockpit_stack, "county_code = %s", ZENGDU)
    cockpit.wait_text("schools-count", lambda s: s == f"第 1–{zengdu} 所,共 {zengdu} 所")
    assert {r[3] for r in _rows(cockpit)} == {"曾都区"}
    assert "q=%E6%9B%BE%E9%83%BD" in cockpit.driver.current_url  # the list as shown is a link
    cockpit.wait_settled()
    assert cockpit.screenshot("which-schools").stat().st_size > 50_000

    csv = _download(cockpit, "#schools-export button.export:nth-child(1)", "csv").read_text(encoding="utf-8-sig")
    lines = csv.splitlines()
    assert lines[0] == "rank,code,name,county_name,city_name,value,num,den,previous,change"
    assert len(lines) == 1 + zengdu and all(",曾都区," in line for line in lines[1:])


def test_every_child_and_headline_figure_opens_its_schools_and_pages_through_them(cockpit, cockpit_stack):
    cockpit.open_as("admin")
    cockpit.wait_text("overview-table", lambda s: "随州市" in s)
    cockpit.click(f"overview-child-which-{SUIZHOU}")
    suizhou = _schools(cockpit_stack, "city_code = %s", SUIZHOU)
    cockpit.wait_text("schools-count", lambda s: s == f"第 1–25 所,共 {suizhou} 所")
    assert cockpit.text("schools-scope-name") == "随州市" and "period" not in cockpit.driver.current_url
    first = [r[1] for r in _rows(cockpit)]
    cockpit.click("schools-next")
    cockpit.wait_text("schools-count", lambda s: s.startswith("第 26–"))
    assert not set(first) & {r[1] for r in _rows(cockpit)}
    cockpit.click("schools-overview")
    cockpit.wait_text("overview-scope-name", lambda s: s == "随州市")
    cockpit.click("overview-which-boards_in_use_now")  # a headline tile's figure
    cockpit.wait_text("schools-title", lambda s: s == "哪些学校 · 正在使用的一体机")
    assert "figure=boards_in_use_now" in cockpit.driver.current_url
    cockpit.wait_text("schools-count", lambda s: s.endswith(f"共 {suizhou} 所"))


@pytest.fixture
def grouped_incident(cockpit_stack):
    """A school of 随州 outside 曾都 whose gateway is down, with two board alerts grouped under it; removed after."""
    with psycopg.connect(cockpit_stack.database_url, row_factory=dict_row, autocommit=True) as conn:
        school = conn.execute("SELECT code, county_code FROM school WHERE city_code = %s AND county_code <> %s "
                              "ORDER BY code LIMIT 1", (SUIZHOU, ZENGDU)).fetchone()
        devices = {r["kind"]: r["ids"] for r in conn.execute(
            "SELECT kind, array_agg(id ORDER BY id) AS ids FROM device WHERE school_code = %s GROUP BY kind",
            (school["code"],))}
        now = datetime.now(UTC)

        def alert(rule: str, device: str, severity: str, root: int | None = None) -> int:
            return conn.execute(
                "INSERT INTO alert (rule_id, device_id, school_code, state, severity, summary, first_seen, last_seen, "
                "fired_at, inhibited_by) VALUES (%s, %s, %s, 'firing', %s, %s, %s, %s, %s, %s) RETURNING id",
                (rule, device, school["code"], severity, f"{rule} {device}", now - timedelta(minutes=30), now,
                 now - timedelta(minutes=25), root)).fetchone()["id"]

        root = alert("gateway_offline", devices["gateway"][0], "critical")
        grouped = [alert("device_offline", board, "major", root) for board in devices["board"][:2]]
    yield {"county": school["county_code"], "root": root, "grouped": grouped}
    with psycopg.connect(cockpit_stack.database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM alert WHERE id = ANY(%s)", ([root, *grouped],))


def test_alerts_grouped_under_a_root_cause_open_on_a_click(cockpit, grouped_incident):
    cockpit.open_as("admin")
    cockpit.open(f"/patrol?level=county&code={grouped_incident['county']}")
    cockpit.wait_text("patrol-alert-list", lambda s: "2 条归并" in s)
    cockpit.click(css="#patrol-alert-list .grouped-link")
    title = f"归并在告警 {grouped_incident['root']} 下的告警"
    cockpit.wait_text("patrol-grouped-title", lambda s: s == title)
    rows = cockpit.driver.find_elements(By.CSS_SELECTOR, "#patrol-grouped-list tbody tr")
    assert len(rows) == 2 and all("设备离线" in r.text and "重要" in r.text for r in rows)
    cockpit.wait_settled()
    assert cockpit.screenshot("patrol-grouped").stat().st_size > 50_000
    csv = _download(cockpit, "#patrol-grouped button.export:nth-child(1)", "csv").read_text(encoding="utf-8-sig")
    assert sorted(int(line.split(",")[0]) for line in csv.splitlines()[1:]) == grouped_incident["grouped"]
    cockpit.click("patrol-grouped-close")
    cockpit.until(lambda d: not d.find_element(By.ID, "patrol-grouped").is_displayed(), "the list did not close")


_SESSIONS = "SELECT count(*) FROM lesson_session ls JOIN remote_lesson l ON l.id = ls.lesson_id " \
            "WHERE ls.day BETWEEN %(first)s AND %(last)s AND (%(kind)s::text IS NULL OR l.kind = %(kind)s)"
# 第 1–30 场,共 312 场(2026-11-24 至 2026-11-30), with its numbers and days as groups
SHOWN = re.compile("^" + re.escape(t("which.sessions.shown")).replace(r"\{first\}", r"(\d+)").replace(
    r"\{last\}", r"(\d+)").replace(r"\{total\}", r"([\d,]+)").replace(r"\{day_from\}", r"(\S+)").replace(
    r"\{day_to\}", r"(\S+)") + "$")


def _sessions(stack, first: str, last: str, kind: str | None = None) -> int:
    """Sessions of the province on these days, counted here from the tables."""
    with psycopg.connect(stack.database_url) as conn:
        return conn.execute(_SESSIONS, {"first": first, "last": last, "kind": kind}).fetchone()[0]


def _shown(cockpit, condition=lambda m: True) -> re.Match:
    text = cockpit.wait_text("lessons-sessions-count", lambda s: bool(SHOWN.match(s)) and condition(SHOWN.match(s)))
    return SHOWN.match(text)


def test_the_session_list_says_how_many_filters_by_kind_and_day_and_pages(cockpit, cockpit_stack):
    cockpit.open_as("admin", "/lessons")
    shown = _shown(cockpit)
    first, last, total = shown[4], shown[5], int(shown[3].replace(",", ""))
    assert total == _sessions(cockpit_stack, first, last) > 30, "the demo province has more than a page of sessions"
    assert (shown[1], shown[2]) == ("1", "30")
    assert len(cockpit.driver.find_elements(By.CSS_SELECTOR, "#lessons-sessions-table tbody tr")) == 30
    cockpit.click("lessons-next")
    _shown(cockpit, lambda m: m[1] == "31")

    _choose(cockpit, "lessons-kind", "专递课堂")
    dedicated = _sessions(cockpit_stack, first, last, "dedicated")
    _shown(cockpit, lambda m: m[1] == "1" and int(m[3].replace(",", "")) == dedicated)
    csv = _download(cockpit, "#lessons-sessions-export button.export:nth-child(1)", "csv")
    lines = csv.read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) == 1 + dedicated and all(",dedicated," in line for line in lines[1:])

    with psycopg.connect(cockpit_stack.database_url) as conn:
        day = conn.execute("SELECT max(day) FROM lesson_session").fetchone()[0].isoformat()
    cockpit.driver.execute_script("""
        const input = document.getElementById('lessons-day');
        Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(input, arguments[0]);
        input.dispatchEvent(new Event('input', {bubbles: true}));""", day)
    cockpit.find("lessons-day").send_keys(Keys.ENTER)
    on_day = _sessions(cockpit_stack, day, day, "dedicated")
    if on_day:
        _shown(cockpit, lambda m: (m[4], m[5]) == (day, day) and int(m[3].replace(",", "")) == on_day)
    else:
        cockpit.wait_text("lessons-sessions-count", lambda s: s == f"共 0 场({day} 至 {day})")
    cockpit.wait_settled()
    assert cockpit.screenshot("lessons-sessions").stat().st_size > 50_000
