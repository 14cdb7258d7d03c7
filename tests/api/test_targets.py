"""Targets on measures beyond the figure catalogue: set through the API, read back on 目标调度, the
communities page and the equity page, every value checked against a count made here."""

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from api.metrics.catalogue import FIGURES
from tests.fixtures.app import login

PROVINCE, SUIZHOU, ZENGDU, SUIXIAN, WUHAN = "420000", "421300", "421303", "421321", "420100"
MEASURES = {"community_coverage": "higher", "equity_cv_primary": "lower", "equity_cv_junior": "lower",
            "lesson_opening_rate": "higher", "teaching_point_reach": "higher"}
# Zengdu's six primary schools: (students, classes, boards, uplink Mbit/s)
ZENGDU_PRIMARY = ((600, 12, 6, 1000), (400, 10, 3, 500), (300, 8, 3, 300), (200, 6, 1, 100), (100, 4, 1, 100),
                  (100, 4, 0, 100))


def later(days: int = 60) -> str:
    return (datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=days)).isoformat()


def weighted_cv(values: list[tuple[float, float]]) -> float:
    """CV of (X_i, P_i) pairs as the 优质均衡 standard defines it."""
    total = sum(p for _, p in values)
    mean = sum(x * p for x, p in values) / total
    return math.sqrt(sum(p / total * (x - mean) ** 2 for x, p in values)) / mean


def zengdu_primary_composite() -> float:
    """The composite CV of Zengdu's primary schools, by hand: boards per 100 students and Mbit/s per student
    (no device is online, no board was used and no primary school receives a lesson: those CVs have no mean)."""
    boards = [(100 * b / p, p) for p, _, b, _ in ZENGDU_PRIMARY]
    uplink = [(u / p, p) for p, _, _, u in ZENGDU_PRIMARY]
    cvs = [round(weighted_cv(boards), 4), round(weighted_cv(uplink), 4)]
    return round(sum(cvs) / len(cvs), 4)


@pytest.fixture
def bureau(registry):
    """随州 (曾都: six primary schools, a junior school, two teaching points; 随县: two primary schools and a
    teaching point) and 武汉 (one school); a community in each 随州 county; three remote lessons this week."""
    registry.area()
    registry.area(county=SUIXIAN, names=("湖北省", "随州市", "随县"))
    registry.area(city=WUHAN, county="420102", names=("湖北省", "武汉市", "江岸区"))
    z = []
    for students, classes, boards, uplink in ZENGDU_PRIMARY:
        school = registry.school(students=students, classes=classes, uplink_mbps=uplink)
        for _ in range(boards):
            registry.device(school)
        z.append(school)
    junior = registry.school(stage="junior", students=800, classes=16)
    tp1, tp2 = (registry.school(stage="teaching_point", locale="rural", students=30, classes=2) for _ in range(2))
    s1, s2 = (registry.school(county=SUIXIAN, locale="town") for _ in range(2))
    tp3 = registry.school(county=SUIXIAN, stage="teaching_point", locale="rural", students=20, classes=1)
    registry.school(county="420102", city=WUHAN)
    registry.community(z[0], [z[1], tp1], code="C1")
    registry.community(s1, [s2, tp3], code="C2")
    rec_z, rec_s = registry.device(z[0], "recorder"), registry.device(s1, "recorder")
    b1, b2, b3, bj = (registry.device(school) for school in (tp1, tp2, tp3, junior))
    # this week, all past: L1 held (tp1 joined, tp3 did not), L2 missed, L3 (from 随县 to the junior school) held
    day = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    start = datetime.now(ZoneInfo("UTC")) - timedelta(minutes=30)
    for lesson, main, receivers, status, joined in (("L1", rec_z, (b1, b3), "held", (b1,)),
                                                     ("L2", rec_z, (b2,), "missed", ()),
                                                     ("L3", rec_s, (bj,), "held", (bj,))):
        registry.lesson(main, receivers, lesson_id=lesson)
        registry.lesson_session(lesson, day, status=status, start=start, minutes=20,
                                receivers={r: start if r in joined else None for r in receivers})
    registry.user("hubei", "province", PROVINCE)
    registry.user("suizhou", "city", SUIZHOU)
    registry.user("zengdu", "county", ZENGDU)
    registry.user("suixian", "county", SUIXIAN)
    return {"zengdu": z, "junior": junior, "teaching_points": (tp1, tp2, tp3)}


def set_target(api, headers, figure, value, *, level="province", code=PROVINCE, comparator=">=",
               deadline=None) -> dict:
    r = api.post(f"/api/v1/scopes/{level}/{code}/targets", headers=headers,
                 json={"figure": figure, "comparator": comparator, "value": value, "deadline": deadline or later()})
    assert r.status_code == 201, r.text
    return r.json()


def standing(api, headers, level, code, figure) -> dict:
    """The 目标调度 entry of the (first) target on `figure` that applies to a scope."""
    progress = api.get(f"/api/v1/scopes/{level}/{code}/targets", headers=headers)
    assert progress.status_code == 200, progress.text
    return next(p for p in progress.json() if p["target"]["figure"] == figure)


def league(entry: dict) -> list[tuple]:
    return [(c["code"], c["value"], c["target"]["status"]) for c in entry["children"]]


def test_every_targetable_key_is_listed_with_its_unit_and_direction(api, bureau):
    listed = {m["key"]: m for m in api.get("/api/v1/targets-catalogue", headers=login(api, "zengdu")).json()}
    assert set(listed) == set(FIGURES) | set(MEASURES)
    assert {k: listed[k]["better"] for k in MEASURES} == MEASURES
    assert {listed[k]["kind"] for k in MEASURES} == {"measure"} and listed["online_rate"]["kind"] == "figure"
    assert listed["equity_cv_primary"]["unit"] == "coefficient" and listed["community_coverage"]["unit"] == "ratio"
    assert all(listed[k]["zh"] and listed[k]["en"] for k in listed)


def test_coverage_target_on_the_targets_page(api, bureau, db):
    hubei = login(api, "hubei")
    set_target(api, hubei, "community_coverage", 0.7)
    counted = {row["city_code"]: row["rate"] for row in db.execute(
        "SELECT s.city_code, count(*) FILTER (WHERE s.code IN (SELECT school_code FROM community_member))::float "
        "/ count(*) AS rate FROM school s WHERE s.stage IN ('primary', 'junior', 'nine_year', 'teaching_point') "
        "GROUP BY ROLLUP (s.city_code)")}
    entry = standing(api, hubei, "province", PROVINCE, "community_coverage")
    assert entry["scope_value"] == round(counted[None], 4) == round(6 / 13, 4)  # 6 of 13 compulsory schools
    assert entry["scope_status"]["status"] == "behind" and entry["scope_status"]["gap"] == round(0.7 - 6 / 13, 4)
    assert league(entry) == [(WUHAN, 0.0, "behind"), (SUIZHOU, round(counted[SUIZHOU], 4), "behind")]
    city = standing(api, login(api, "suizhou"), "city", SUIZHOU, "community_coverage")
    assert league(city) == [(ZENGDU, round(1 / 3, 4), "behind"), (SUIXIAN, 1.0, "met")]  # 3 of 9; 3 of 3
    assert city["days_left"] == 60 and city["overdue"] is False


def test_lesson_targets_on_the_targets_page(api, bureau, db):
    hubei = login(api, "hubei")
    set_target(api, hubei, "lesson_opening_rate", 0.9)
    set_target(api, hubei, "teaching_point_reach", 1.0)
    headers = login(api, "suizhou")
    opening = db.execute(
        "SELECT count(*) FILTER (WHERE ls.status = 'held')::float / count(*) AS rate FROM lesson_session ls "
        "JOIN remote_lesson l ON l.id = ls.lesson_id JOIN device d ON d.id = l.main_device_id "
        "JOIN school s ON s.code = d.school_code WHERE s.city_code = %s AND ls.scheduled_end <= now()",
        (SUIZHOU,)).fetchone()["rate"]
    reach = db.execute(
        "SELECT count(*) FILTER (WHERE EXISTS (SELECT 1 FROM lesson_session_receiver r JOIN device d "
        "ON d.id = r.device_id JOIN lesson_session ls ON (ls.lesson_id, ls.day) = (r.lesson_id, r.day) "
        "WHERE d.school_code = s.code AND ls.status = 'held' AND r.joined_at IS NOT NULL))::float / count(*) "
        "AS rate FROM school s WHERE s.stage = 'teaching_point' AND s.city_code = %s", (SUIZHOU,)).fetchone()["rate"]
    entry = standing(api, headers, "city", SUIZHOU, "lesson_opening_rate")
    assert entry["scope_value"] == round(opening, 4) == round(2 / 3, 4)
    assert entry["scope_status"]["gap"] == round(0.9 - 2 / 3, 4) and entry["scope_status"]["status"] == "behind"
    assert league(entry) == [(ZENGDU, 0.5, "behind"), (SUIXIAN, 1.0, "met")]  # L1 held, L2 missed; L3 held
    entry = standing(api, headers, "city", SUIZHOU, "teaching_point_reach")
    assert entry["scope_value"] == round(reach, 4) == round(1 / 3, 4)  # only tp1 joined a held lesson
    assert league(entry) == [(SUIXIAN, 0.0, "behind"), (ZENGDU, 0.5, "behind")]
    wuhan = standing(api, hubei, "province", PROVINCE, "teaching_point_reach")["children"][-1]
    assert (wuhan["code"], wuhan["value"], wuhan["target"]["status"]) == (WUHAN, None, "no_data")  # no teaching point


def test_equity_target_and_too_few_schools(api, bureau):
    hubei = login(api, "hubei")
    primary = set_target(api, hubei, "equity_cv_primary", 0.5, comparator="<=")
    set_target(api, hubei, "equity_cv_junior", 0.45, comparator="<=")
    composite = zengdu_primary_composite()
    city = standing(api, login(api, "suizhou"), "city", SUIZHOU, "equity_cv_primary")
    # the city stands at its worst judged county: 曾都; 随县 has two primary schools, too few to judge
    assert city["scope_value"] == composite and city["scope_status"]["status"] == "met"
    assert league(city) == [(ZENGDU, composite, "met"), (SUIXIAN, None, "no_data")]
    suixian = standing(api, login(api, "suixian"), "county", SUIXIAN, "equity_cv_primary")
    assert suixian["scope_value"] is None and suixian["scope_status"]["status"] == "no_data"
    junior = standing(api, login(api, "zengdu"), "county", ZENGDU, "equity_cv_junior")
    assert junior["scope_value"] is None and junior["scope_status"]["status"] == "no_data"  # one junior school
    # the equity page draws the same target as its bar, and judges only the groups with schools enough
    groups = {(c["code"], g["group"]): g for c in api.get(f"/api/v1/scopes/city/{SUIZHOU}/equity",
                                                          headers=login(api, "suizhou")).json()["counties"]
              for g in c["groups"]}
    zengdu = groups[(ZENGDU, "primary")]
    assert (zengdu["composite_cv"], zengdu["judged"], zengdu["bar"], zengdu["passes"]) == (composite, True, 0.5, True)
    assert zengdu["target"]["target_id"] == primary["id"] and zengdu["target"]["status"] == "met"
    few = groups[(SUIXIAN, "primary")]
    assert (few["judged"], few["bar"], few["passes"], few["target"]["status"]) == (False, 0.5, None, "no_data")


def test_editing_a_target_changes_the_equity_page(api, bureau):
    def zengdu_primary() -> dict:
        body = api.get(f"/api/v1/scopes/county/{ZENGDU}/equity", headers=login(api, "zengdu")).json()
        return next(g for g in body["counties"][0]["groups"] if g["group"] == "primary")

    assert (zengdu_primary()["bar"], zengdu_primary()["passes"], zengdu_primary()["target"]) == (None, None, None)
    hubei = login(api, "hubei")
    set_target(api, hubei, "equity_cv_primary", 0.5, comparator="<=")
    assert (zengdu_primary()["bar"], zengdu_primary()["passes"]) == (0.5, True)
    stricter = set_target(api, login(api, "suizhou"), "equity_cv_primary", 0.3, level="county", code=ZENGDU,
                          comparator="<=")
    group = zengdu_primary()
    assert (group["bar"], group["passes"], group["target"]["status"]) == (0.3, False, "behind")  # nearest wins
    assert group["target"]["gap"] == round(zengdu_primary_composite() - 0.3, 4)
    assert api.delete(f"/api/v1/targets/{stricter['id']}", headers=login(api, "suizhou")).status_code == 204
    assert zengdu_primary()["bar"] == 0.5


def test_editing_a_target_changes_the_communities_page(api, bureau):
    def coverage() -> dict:
        return api.get(f"/api/v1/scopes/city/{SUIZHOU}/communities/coverage", headers=login(api, "suizhou")).json()

    assert coverage()["figures"]["targets"] == [] and all(c["figures"]["targets"] == [] for c in coverage()["children"])
    hubei = login(api, "hubei")
    set_target(api, hubei, "community_coverage", 0.7, deadline="2024-12-31")
    set_target(api, hubei, "community_coverage", 0.8, deadline="2025-12-31")
    body = coverage()
    stages = [(t["deadline"], t["value"], t["status"], t["gap"]) for t in body["figures"]["targets"]]
    assert stages == [("2024-12-31", 0.7, "missed", 0.2), ("2025-12-31", 0.8, "missed", 0.3)]  # 6 of 12
    kids = {c["code"]: [t["status"] for t in c["figures"]["targets"]] for c in body["children"]}
    assert kids == {ZENGDU: ["missed", "missed"], SUIXIAN: ["met", "met"]}
    # the same value with a new bar replaces the target; a target on the city replaces the province's there
    set_target(api, hubei, "community_coverage", 0.5, deadline="2024-12-31")
    assert coverage()["figures"]["targets"][0]["status"] == "met"
    set_target(api, hubei, "community_coverage", 0.9, level="city", code=SUIZHOU)
    [own] = coverage()["figures"]["targets"]
    assert (own["value"], own["status"], own["set_on"]["code"]) == (0.9, "behind", SUIZHOU)
    progress = api.get(f"/api/v1/scopes/city/{SUIZHOU}/targets", headers=login(api, "suizhou")).json()
    past = next(p for p in progress if p["target"]["deadline"] == "2025-12-31")
    assert past["days_left"] < 0 and past["overdue"] is True  # 50 % never reached 80 %


def test_one_target_can_be_asked_alone_beside_figure_targets(api, bureau):
    hubei = login(api, "hubei")
    online = set_target(api, hubei, "online_rate", 0.9, deadline=later(10))
    coverage = set_target(api, hubei, "community_coverage", 0.7, deadline=later(20))
    both = api.get(f"/api/v1/scopes/province/{PROVINCE}/targets", headers=hubei).json()
    assert [p["target"]["id"] for p in both] == [online["id"], coverage["id"]]  # earliest deadline first
    assert both[0]["scope_value"] == 0.0 and both[0]["days_left"] == 10  # no device is online
    [alone] = api.get(f"/api/v1/scopes/province/{PROVINCE}/targets", params={"target_id": coverage["id"]},
                      headers=hubei).json()
    assert alone == both[1]


def test_targets_are_refused_with_reasons(api, bureau):
    hubei = login(api, "hubei")
    r = api.post(f"/api/v1/scopes/province/{PROVINCE}/targets", headers=hubei,
                 json={"figure": "nonsense", "value": 0.5, "deadline": later()})
    assert r.status_code == 422 and "figure" in r.text
    r = api.post(f"/api/v1/scopes/province/{PROVINCE}/targets", headers=hubei,
                 json={"figure": "equity_cv_primary", "comparator": ">=", "value": 0.5, "deadline": later()})
    assert r.status_code == 422 and "<=" in r.json()["detail"]


def test_a_county_manager_sets_no_target_on_a_county(api, bureau):
    zengdu = login(api, "zengdu")
    body = {"figure": "community_coverage", "value": 0.9, "deadline": later()}
    own = api.post(f"/api/v1/scopes/county/{ZENGDU}/targets", json=body, headers=zengdu)
    assert own.status_code == 403 and "level above" in own.json()["detail"]
    assert api.post(f"/api/v1/scopes/county/{SUIXIAN}/targets", json=body, headers=zengdu).status_code == 404
    school = bureau["zengdu"][0]
    assert api.post(f"/api/v1/scopes/school/{school}/targets", json=body, headers=zengdu).status_code == 201


def test_a_county_manager_cannot_withdraw_the_target_the_city_dispatched(api, bureau):
    body = {"figure": "community_coverage", "value": 0.9, "deadline": later()}
    dispatched = api.post(f"/api/v1/scopes/county/{ZENGDU}/targets", json=body, headers=login(api, "suizhou")).json()
    refused = api.delete(f"/api/v1/targets/{dispatched['id']}", headers=login(api, "zengdu"))
    assert refused.status_code == 403 and "level above" in refused.json()["detail"]
    assert api.get(f"/api/v1/targets/{dispatched['id']}", headers=login(api, "zengdu")).status_code == 200
    assert api.delete(f"/api/v1/targets/{dispatched['id']}", headers=login(api, "suizhou")).status_code == 204


def test_no_target_no_line_no_verdict(api, bureau):
    headers = login(api, "suizhou")
    assert api.get(f"/api/v1/scopes/city/{SUIZHOU}/targets", headers=headers).json() == []
    groups = [g for c in api.get(f"/api/v1/scopes/city/{SUIZHOU}/equity", headers=headers).json()["counties"]
              for g in c["groups"]]
    assert groups and all(g["bar"] is None and g["passes"] is None and g["target"] is None for g in groups)
    assert api.get(f"/api/v1/scopes/city/{SUIZHOU}/communities/coverage", headers=headers).json()["figures"][
        "targets"] == []
