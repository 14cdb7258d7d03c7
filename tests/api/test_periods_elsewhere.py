"""The same period vocabulary on lessons, equity, communities and patrol response times."""

import math
from datetime import UTC, date, datetime, time, timedelta

import pytest

from tests.api.test_lessons import WEEK, area, week42  # noqa: F401 - fixtures: a week of matched sessions
from tests.fixtures.app import login
from tests.fixtures.factories import LOCAL

# -- the three classrooms ----------------------------------------------------------------------------------


def test_lesson_figures_of_a_week_asked_as_a_period_are_those_of_the_week(api, week42):  # noqa: F811
    headers = login(api, "suizhou")
    path = "/api/v1/scopes/city/421300/lessons/summary"
    by_week = api.get(path, params={"week": WEEK}, headers=headers).json()
    by_days = api.get(path, params={"from": "2024-10-14", "to": "2024-10-20"}, headers=headers).json()
    assert "period" not in by_week and "previous" not in by_week
    assert by_days["figures"] == by_week["figures"] and by_days["children"] == by_week["children"]
    assert (by_days["week"], by_days["week_start"], by_days["week_end"]) == (WEEK, "2024-10-14", "2024-10-20")
    assert by_days["period"]["label"] == "custom" and by_days["period"]["previous"]["from"] == "2024-10-07"
    assert all(f["sessions_scheduled"] == 0 for f in by_days["previous"])  # nothing the week before


def test_lesson_figures_over_a_month_and_its_previous_month(api, week42):  # noqa: F811
    headers = login(api, "suizhou")
    body = api.get("/api/v1/scopes/city/421300/lessons/summary", params={"from": "2024-10-01", "to": "2024-10-31"},
                   headers=headers).json()
    every = {f["kind"]: f for f in body["figures"]}["all"]
    assert (every["sessions_scheduled"], every["sessions_held"], every["opening_rate"]) == (3, 2, round(2 / 3, 4))
    assert every["weekly_lessons_per_main_classroom"] == round(2 / (1 * 31 / 7), 2)  # held / classrooms / weeks
    assert (body["period"]["previous"]["from"], body["period"]["previous"]["to"]) == ("2024-08-31", "2024-09-30")
    weeks = api.get("/api/v1/scopes/city/421300/lessons/weekly", params={"from": "2024-10-01", "to": "2024-10-31"},
                    headers=headers).json()
    assert [w["week"] for w in weeks] == ["2024-W40", "2024-W41", "2024-W42", "2024-W43", "2024-W44"]
    assert [w["sessions_held"] for w in weeks] == [0, 0, 2, 0, 0] and weeks[2]["sessions_missed"] == 1
    sessions = api.get("/api/v1/scopes/city/421300/lessons/sessions", params={"from": "2024-10-15", "to": "2024-10-16"},
                       headers=headers).json()
    assert sessions["total"] == 2 and {s["day"] for s in sessions["items"]} == {"2024-10-15", "2024-10-16"}


@pytest.mark.parametrize(("path", "params"), [
    ("lessons/summary", {"week": WEEK, "period": "last_week"}),
    ("lessons/sessions", {"day_from": "2024-10-14", "from": "2024-10-14", "to": "2024-10-20"}),
])
def test_a_period_and_the_routes_own_range_are_not_both_taken(api, week42, path, params):  # noqa: F811
    r = api.get(f"/api/v1/scopes/city/421300/{path}", params=params, headers=login(api, "suizhou"))
    assert r.status_code == 422 and "not both" in r.json()["detail"]


# -- equity ------------------------------------------------------------------------------------------------

def weighted_cv(values: list[tuple[float, float]]) -> float:
    total = sum(p for _, p in values)
    mean = sum(x * p for x, p in values) / total
    return math.sqrt(sum(p / total * (x - mean) ** 2 for x, p in values)) / mean


MONDAY = date(2025, 1, 6)


def test_equity_over_a_period_takes_availability_and_use_from_the_rollups(api, db, registry):
    registry.area()
    # (students, classes, boards, online minutes of each board that Monday, hours of use)
    plan = [(500, 10, 10, 720, 10.0), (300, 9, 9, 1440, 4.5), (200, 2, 2, 360, 1.0)]
    for students, classes, boards, online, hours in plan:
        school = registry.school(students=students, classes=classes)
        for _ in range(boards):
            registry.device(school)
        db.execute("INSERT INTO school_daily (bucket, school_code, kind, devices_reporting, devices_active, "
                   "online_minutes, active_use_s) VALUES (%s, %s, 'board', %s, %s, %s, %s)",
                   (datetime.combine(MONDAY, time(), LOCAL), school, boards, boards, boards * online,
                    int(hours * 3600)))
    db.execute("UPDATE device SET installed_on = '2020-01-01'")
    registry.user("zengdu", "county", "421303")
    body = api.get("/api/v1/scopes/county/421303/equity", params={"from": MONDAY.isoformat(), "to": MONDAY.isoformat()},
                   headers=login(api, "zengdu")).json()
    assert body["period"]["from"] == body["period"]["to"] == "2025-01-06"
    [county] = body["counties"]
    cv = {i["indicator"]: i for i in county["groups"][0]["indicators"]}
    # availability that Monday: 0.5, 1.0, 0.25; use per class and school day: 1.0, 0.5, 0.5
    assert cv["online_rate"]["cv"] == round(weighted_cv([(0.5, 500), (1.0, 300), (0.25, 200)]), 4)
    assert cv["online_rate"]["mean"] == round((0.5 * 500 + 1.0 * 300 + 0.25 * 200) / 1000, 4)
    assert cv["use_hours_per_class_day"]["cv"] == round(weighted_cv([(1.0, 500), (0.5, 300), (0.5, 200)]), 4)
    assert cv["boards_per_100_students"]["cv"] == round(weighted_cv([(2, 500), (3, 300), (1, 200)]), 4)
    before = api.get("/api/v1/scopes/county/421303/equity", params={"from": "2019-12-01", "to": "2019-12-31"},
                     headers=login(api, "zengdu")).json()
    [county] = before["counties"]  # no board was in service yet: none counted, no availability to take
    indicators = {i["indicator"]: i for i in county["groups"][0]["indicators"]}
    assert indicators["boards_per_100_students"]["mean"] == 0 and "online_rate" not in indicators
    assert "period" not in api.get("/api/v1/scopes/county/421303/equity", headers=login(api, "zengdu")).json()


# -- communities -------------------------------------------------------------------------------------------

def test_coverage_as_of_the_end_of_a_period(api, db, registry):
    registry.area()
    lead, early, late, alone = (registry.school() for _ in range(4))
    registry.community(lead, [early], code="C1", founded_on="2024-09-01", joined_on="2024-09-01")
    registry.member("C1", late, joined_on="2025-03-01")
    registry.user("zengdu", "county", "421303")
    path = "/api/v1/scopes/county/421303/communities/coverage"
    now = api.get(path, headers=login(api, "zengdu")).json()
    autumn = api.get(path, params={"from": "2024-10-01", "to": "2024-10-31"}, headers=login(api, "zengdu")).json()
    summer = api.get(path, params={"from": "2024-08-01", "to": "2024-08-31"}, headers=login(api, "zengdu")).json()
    assert "period" not in now and autumn["period"]["to"] == "2024-10-31"
    assert (now["figures"]["covered_schools"], now["figures"]["avg_members"]) == (3, 2.0)
    assert (autumn["figures"]["covered_schools"], autumn["figures"]["avg_members"]) == (2, 1.0)
    assert (summer["figures"]["covered_schools"], summer["figures"]["communities"]) == (0, 0)
    assert {f["compulsory_schools"] for f in (now["figures"], autumn["figures"])} == {4}
    listed = api.get("/api/v1/scopes/county/421303/communities", params={"from": "2024-10-01", "to": "2024-10-31"},
                     headers=login(api, "zengdu")).json()
    assert [r["members"] for r in listed] == [1]
    detail = api.get("/api/v1/communities/C1", params={"period": "last_month"}, headers=login(api, "zengdu")).json()
    assert detail["members"] == 2 and detail["activity_weeks"] >= 4


# -- patrol ------------------------------------------------------------------------------------------------

def test_response_times_of_the_alerts_fired_in_a_period(api, db, registry):
    registry.area()
    school = registry.school()
    board = registry.device(school)
    registry.user("zengdu", "county", "421303")
    fired = datetime.combine(MONDAY, time(10, 0), LOCAL)
    old = registry.alert(board, state="resolved", first_seen=fired, fired_at=fired)
    db.execute("UPDATE alert SET acked_at = %s, resolved_at = %s WHERE id = %s",
               (fired + timedelta(minutes=10), fired + timedelta(hours=1), old))
    recent = registry.alert(board, rule="storage_low", fired_at=datetime.now(UTC) - timedelta(seconds=5))
    db.execute("UPDATE alert SET acked_at = fired_at + interval '2 minutes' WHERE id = %s", (recent,))
    path = "/api/v1/scopes/county/421303/response-times"
    [monday] = api.get(path, params={"from": "2025-01-06", "to": "2025-01-06"}, headers=login(api, "zengdu")).json()
    assert (monday["fired"], monday["mtta_s"], monday["mttr_s"]) == (1, 600, 3600)
    [today] = api.get(path, params={"period": "today"}, headers=login(api, "zengdu")).json()
    [last_30_days] = api.get(path, headers=login(api, "zengdu")).json()
    assert today["fired"] == last_30_days["fired"] == 1 and today["mtta_s"] == 120
    assert api.get(path, params={"from": "2025-01-07", "to": "2025-01-07"}, headers=login(api, "zengdu")).json() == []
