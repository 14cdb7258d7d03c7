"""The wall (大屏): its callbacks against the real API, and the screen itself in headless Chromium.

The callbacks run as Dash runs them, with the cockpit's API client routed to the test API (and, for an
API that is away, to a port nobody listens on): the key traded for a token and the token kept, a
revocation noticed, nothing growing however often the token is renewed, and the link's pages in turn.
The browser test opens a display link at 1920×1080 and at 3840×2160 without any login, sees two pages
rotate, and sees the screen say so when the link is revoked (screenshots wall-1080p, wall-4k).
"""

import json
import struct
import sys
import time

import dash
import httpx
import pytest
from selenium.webdriver.common.by import By

from dashboard import api_client
from dashboard.app import create_app
from ops.seed.generator import DEMO_PASSWORD
from tests.fixtures.app import login

LINKS = "/api/v1/admin/display-links"


@pytest.fixture(scope="module")
def wall():
    """The wall page's module as Dash imports it (creating the app registers every page)."""
    if "pages.wall" not in sys.modules:
        create_app()
    return sys.modules["pages.wall"]


@pytest.fixture
def through_api(api, monkeypatch):
    """The cockpit's API client, talking to the test API."""
    monkeypatch.setattr(api_client, "_client", lambda: api)
    api_client._routes_cache.clear()
    yield api
    api_client._routes_cache.clear()


@pytest.fixture
def link(through_api, registry):
    """A display link of 曾都区 issued by the city's administrator, and the administrator's headers."""
    registry.area()
    registry.school(county="421303")
    registry.user("suizhou-admin", "city", "421300", role="admin")
    admin = login(through_api, "suizhou-admin")
    r = through_api.post(LINKS, json={"label": "指挥中心大屏", "scope_level": "county", "scope_code": "421303",
                                      "pages": ["/equity", "/", "/no-such-page"], "rotate_s": 20}, headers=admin)
    assert r.status_code == 201, r.text
    return {**r.json(), "admin": admin}


def text(component) -> str:
    """Every string inside a Dash component, in order."""
    if component is None or isinstance(component, str | int | float):
        return "" if component is None else str(component)
    if isinstance(component, list | tuple):
        return " ".join(text(c) for c in component)
    return text(getattr(component, "children", None))


def test_the_key_buys_a_token_that_is_kept_renewed_and_dropped_when_revoked(wall, link, through_api, monkeypatch):
    fragment = f"#key={link['key']}"
    session, shown, renew_at, state, notice, stopped = wall.keep(None, fragment, None, None, None, None)
    assert session["user"]["role"] == "display" and session["user"]["scope_code"] == "421303"
    assert shown["pages"] == ["/equity", "/", "/no-such-page"] and shown["rotate_s"] == 20
    assert time.time() + 400 < renew_at < time.time() + 451  # half of the token's 15 minutes
    assert text(state) == "● 实时" and notice is None and stopped is False

    heartbeat = wall.keep(3, fragment, shown, renew_at, session, "zh")  # the token is good: nothing replaced
    assert heartbeat[:3] == (dash.no_update,) * 3 and text(heartbeat[3]) == "● 实时"

    sizes = set()
    for _ in range(12):  # renewals replace the token; the stores never grow
        renewed, again, renew_at, *_ = wall.keep(4, fragment, shown, time.time() - 1, session, "zh")
        assert again is dash.no_update and set(renewed) == {"token", "user"}
        sizes.add(len(json.dumps(renewed)))
        session = renewed
    assert max(sizes) - min(sizes) <= 2, sizes

    monkeypatch.setattr(api_client, "_client", lambda: httpx.Client(base_url="http://127.0.0.1:9", timeout=1))
    away = wall.keep(5, fragment, shown, renew_at, session, "zh")  # the API is away: keep all, say so, retry
    assert away[:3] == (dash.no_update,) * 3 and "正在重试" in text(away[3]) and away[5] is False
    assert wall.keep(5, fragment, None, None, None, "zh")[4] is None  # not started yet: no notice either
    monkeypatch.setattr(api_client, "_client", lambda: through_api)

    assert through_api.post(f"{LINKS}/{link['id']}/revoke", headers=link["admin"]).status_code == 200
    gone, no_link, _, _, notice, stopped = wall.keep(6, fragment, shown, renew_at, session, "zh")
    assert gone is None and no_link is None and stopped is True
    assert text(notice).startswith("此展示链接已被撤销")
    assert text(wall.keep(0, "#key=dl_nobody", None, None, None, "en")[4]).startswith("This display link is not valid")
    assert text(wall.keep(0, "", None, None, None, "zh")[4]).startswith("请用管理员生成的展示链接打开大屏")


def test_the_link_s_pages_come_in_turn_drawn_afresh(wall, link, through_api):
    shown = wall.keep(None, f"#key={link['key']}", None, None, None, "zh")[1]
    turns = [wall.rotate(n, shown, "zh") for n in range(4)]
    assert [t[0].to_plotly_json()["props"]["data-page"] for t in turns] == ["/equity", "/", "/equity", "/"]
    assert [t[1] for t in turns] == ["均衡发展 · 1/2", "运行监测 · 2/2", "均衡发展 · 1/2", "运行监测 · 2/2"]
    assert {(t[2], t[3], t[4]) for t in turns} == {("指挥中心大屏 · 曾都区", 20_000, False)}
    assert turns[0][0].children is not turns[2][0].children  # a fresh layout each turn, nothing kept
    nothing = wall.rotate(0, {**shown, "pages": ["/admin", "/login", "/wall"]}, "zh")
    assert text(nothing[0]).startswith("此展示链接的页面在本驾驶舱中均不可用") and nothing[4] is True
    assert wall.rotate(7, None, "zh") == ([], "", "", dash.no_update, True)
    offered = {p["path"] for p in wall.wall_pages(api_client.routes())}
    assert {"/", "/equity", "/patrol"} <= offered and not offered & {"/admin", "/login", "/wall", "/device"}


def test_the_key_is_read_from_the_fragment_only_when_it_is_one(wall):
    assert wall.key_of("#key=dl_abc-_9") == "dl_abc-_9"
    assert wall.key_of("#lang=en&key=dl_x") == "dl_x"
    for fragment in (None, "", "#", "#key=", "#key=a b", "#key=<script>", "#nokey=dl_x", "#key=" + "x" * 257):
        assert wall.key_of(fragment) is None, fragment


def _png_size(path) -> tuple[int, int]:
    with open(path, "rb") as f:
        return struct.unpack(">II", f.read(24)[16:24])


@pytest.mark.browser
def test_the_wall_rotates_two_pages_without_a_login_at_1080p_and_4k_and_says_when_revoked(cockpit, cockpit_stack):
    with httpx.Client(base_url=cockpit_stack.api_url, timeout=30) as client:
        token = client.post("/api/v1/auth/token", data={"username": "admin", "password": DEMO_PASSWORD})
        admin = {"Authorization": f"Bearer {token.json()['access_token']}"}
        issued = client.post(LINKS, json={"label": "指挥中心大屏", "scope_level": "county", "scope_code": "421303",
                                          "pages": ["/", "/equity"], "rotate_s": 5}, headers=admin)
        assert issued.status_code == 201, issued.text
        link = issued.json()

        cockpit.open(link["wall_path"])  # a fresh browser: no login, no session
        assert cockpit.wait_text("wall-page", lambda s: s.endswith("/2")) in ("运行监测 · 1/2", "均衡发展 · 2/2")
        cockpit.wait_charts()
        driver = cockpit.driver
        assert driver.execute_script("return window.location.pathname") == "/wall"
        assert not driver.find_element(By.CLASS_NAME, "cockpit-header").is_displayed()  # no navigation, no logout
        assert cockpit.text("wall-where") == "指挥中心大屏 · 曾都区" and cockpit.text("wall-state") == "● 实时"
        assert _png_size(cockpit.screenshot("wall-1080p")) == (1920, 1080)
        seen = {cockpit.wait_text("wall-page", lambda s: s.endswith("/2"))}
        seen.add(cockpit.wait_text("wall-page", lambda s: s not in seen))
        assert seen == {"运行监测 · 1/2", "均衡发展 · 2/2"}  # both pages came round, nobody logged in

        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 3840, "height": 2160, "deviceScaleFactor": 1, "mobile": False})
        cockpit.until(lambda d: d.execute_script("return getComputedStyle(document.getElementById('wall')).zoom")
                      == "2", "the wall was not scaled to the 4K screen")
        cockpit.wait_charts()  # the page on screen, drawn (the same layout, twice the size)
        width = driver.execute_script("return document.getElementById('wall').getBoundingClientRect().width")
        assert abs(width - 3840) < 2, width
        assert _png_size(cockpit.screenshot("wall-4k")) == (3840, 2160)

        assert client.post(f"{LINKS}/{link['id']}/revoke", headers=admin).status_code == 200
    assert cockpit.wait_text("wall-notice-head", lambda s: s != "") == "此展示链接已被撤销"
    assert not driver.find_elements(By.ID, "wall-frame")  # the pages are gone, and the token with them
    assert driver.execute_script("return window.sessionStorage.getItem('session')") in (None, "null")


def test_the_administration_offers_the_navigation_s_pages_and_shows_each_link_s_state(wall):
    import flask

    page = sys.modules["pages.admin_display"]
    offered = [p["path"] for p in page.offered_pages()]
    assert offered[0] == "/" and {"/equity", "/patrol"} <= set(offered)
    assert not [p for p in offered if p.startswith("/admin") or p in ("/login", "/wall", "/device", "/schools")]
    assert page.page_names(["/equity", "/", "/gone"], "zh") == "均衡发展 → 运行监测 → /gone"
    live, revoked = page.link_rows([
        {"id": 3, "label": "大屏", "scope_level": "county", "scope_code": "421303", "pages": ["/"], "rotate_s": 30,
         "created_by": "a", "created_at": "2026-03-01T08:00:00Z", "last_used_at": None, "revoked_at": None},
        {"id": 2, "label": "旧屏", "scope_level": "city", "scope_code": "421300", "pages": ["/"], "rotate_s": 60,
         "created_by": "a", "created_at": "2026-02-01T08:00:00Z", "last_used_at": "2026-02-02T08:00:00Z",
         "revoked_at": "2026-02-03T08:00:00Z", "revoked_by": "b"}], "zh")
    assert live[-1].id == {"type": "admin-display-revoke", "id": 3} and live[-2] == "有效" and live[6] == "—"
    assert revoked[-1] == "" and revoked[-2].startswith("已撤销") and revoked[-2].endswith("b")
    assert (page.whole(30.0), page.whole(7.5), page.whole(12), page.whole("x")) == (30, 7.5, 12, "x")
    with flask.Flask(__name__).test_request_context("http://wall.example:8050/_dash-update-component"):
        shown = text(page.issued({"label": "大屏", "wall_path": "/wall#key=dl_x"}, "zh"))
    assert "http://wall.example:8050/wall#key=dl_x" in shown and "仅显示这一次" in shown
