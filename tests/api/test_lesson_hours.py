"""The lesson-hours lens (`hours=lessons`): availability and use over the lesson hours of a period's
school days only, from raw readings through the real rollups, in both storage modes.

One board, one school: a holiday with lessons-time readings (excluded), then a school day with
readings before lessons (07:00–07:59), in them (08:00–08:29 while used, 14:00–14:59 while idle), at
lunch (12:00–12:59) and in the evening (20:00–20:09). Every expectation below is counted by hand
from those readings: lesson hours are 08–12 and 14–18 local (core/calendar.py LESSON_HOURS), so
the school day has 8 × 60 = 480 lesson minutes.
"""

from datetime import UTC, date, datetime, time, timedelta

import pytest

from core.calendar import LESSON_HOURS
from rollups.service import refresh
from tests.fixtures.app import login
from tests.fixtures.factories import LOCAL

LENS_FIGURES = "board_online_rate,online_rate,use_hours_per_board_day,powered_on_rate_school_hours"


def _school_day() -> date:
    """A weekday two to four days ago whose day before is a weekday too (the holiday of the scenario):
    inside the rollups' reach in both modes, and finished."""
    day = datetime.now(LOCAL).date() - timedelta(days=2)
    while day.isoweekday() > 5 or (day - timedelta(days=1)).isoweekday() > 5:
        day -= timedelta(days=1)
    return day


@pytest.fixture
def lens(db, registry):
    """The scenario; returns (school day, holiday, county code, headers of a province manager)."""
    registry.area()
    school = registry.school()
    board = registry.device(school, kind="board")
    day = _school_day()
    holiday = registry.calendar_day(day - timedelta(days=1))
    db.execute("UPDATE device SET installed_on = %s WHERE id = %s", (day - timedelta(days=30), board))
    counter = 10_000
    rows = []

    def minutes(d: date, h: int, m0: int, m1: int, *, used: bool) -> None:
        nonlocal counter
        for m in range(m0, m1):
            counter += 60 if used else 0
            rows.append((board, datetime.combine(d, time(h, m), LOCAL), counter))

    minutes(holiday, 8, 0, 60, used=True)  # lesson hours of a holiday: not lesson time
    minutes(day, 7, 0, 60, used=True)
    minutes(day, 8, 0, 30, used=True)
    minutes(day, 12, 0, 60, used=False)
    minutes(day, 14, 0, 60, used=False)
    minutes(day, 20, 0, 10, used=False)
    with db.cursor() as cur:
        cur.executemany("INSERT INTO board_telemetry (device_id, time, seq, power_on, screen_on, active_use_s) "
                        "VALUES (%s, %s, %s, true, true, %s)",
                        [(b, t, int(t.timestamp()), v) for b, t, v in rows])
    refresh(db, now=datetime.now(UTC) + timedelta(hours=1))
    registry.user("prov", "province", "420000")
    return day, holiday, "421303"


def _figures(api, headers, day: date, first: date | None = None, **extra) -> dict:
    r = api.get("/api/v1/scopes/county/421303/figures", headers=headers,
                params={"keys": LENS_FIGURES, "from": (first or day).isoformat(), "to": day.isoformat(), **extra})
    assert r.status_code == 200, r.text
    return r.json()


def test_lesson_hours_count_only_lesson_time_of_school_days(api, lens):
    day, holiday, _ = lens
    headers = login(api, "prov")
    whole = _figures(api, headers, day)["figures"]
    lessons = _figures(api, headers, day, hours="lessons")
    assert lessons["hours"] == "lessons"
    f = lessons["figures"]
    # online in lesson hours: 08:00–08:29 and 14:00–14:59 = 90 of 480 lesson minutes
    assert f["board_online_rate"]["num"] == 90 and f["board_online_rate"]["den"] == 480
    assert f["board_online_rate"]["value"] == pytest.approx(90 / 480, abs=1e-4)
    assert f["online_rate"]["value"] == f["board_online_rate"]["value"]  # the only device
    # the whole day: 60 + 30 + 60 + 60 + 10 = 220 of 1,440 minutes
    assert whole["board_online_rate"]["num"] == 220 and whole["board_online_rate"]["den"] == 1440
    # use: the counter rose 60 s with each of the 90 readings from 07:00 to 08:29 (the first against
    # the holiday's last one); the lesson hours hold 08:00–08:29
    assert f["use_hours_per_board_day"]["value"] == pytest.approx(1800 / 3600, abs=1e-4)
    assert whole["use_hours_per_board_day"]["value"] == pytest.approx(90 * 60 / 3600, abs=1e-4)
    # powered on in lesson hours: 90 of the board's 480 lesson minutes
    assert f["powered_on_rate_school_hours"]["value"] == pytest.approx(90 / 480, abs=1e-4)

    # the holiday before it adds nothing to the lens (no lesson minutes, its readings not counted) ...
    both = _figures(api, headers, day, first=holiday, hours="lessons")["figures"]
    assert (both["board_online_rate"]["num"], both["board_online_rate"]["den"]) == (90, 480)
    # ... while the whole day counts its 60 minutes over two days
    both_whole = _figures(api, headers, day, first=holiday)["figures"]
    assert (both_whole["board_online_rate"]["num"], both_whole["board_online_rate"]["den"]) == (280, 2880)


def test_a_ranking_and_a_trend_through_the_lens(api, lens):
    day, holiday, _ = lens
    headers = login(api, "prov")
    r = api.get("/api/v1/scopes/county/421303/ranking", headers=headers,
                params={"figure": "board_online_rate", "from": day.isoformat(), "to": day.isoformat(),
                        "hours": "lessons"})
    assert r.status_code == 200, r.text
    assert r.json()["hours"] == "lessons"
    assert r.json()["items"][0]["value"] == pytest.approx(90 / 480, abs=1e-4)

    params = {"figure": "board_online_rate", "from": holiday.isoformat(), "to": day.isoformat(), "hours": "lessons"}
    hourly = api.get("/api/v1/scopes/county/421303/trend", headers=headers, params=params | {"bucket": "hour"}).json()
    local_hours = {datetime.fromisoformat(p["bucket"]).astimezone(LOCAL).hour: p for p in hourly["points"]}
    # the school day's lesson hours, each a point (the holiday has none; 07, 12 and 20 are not lesson hours)
    assert set(local_hours) == set(LESSON_HOURS)
    assert all(datetime.fromisoformat(p["bucket"]).astimezone(LOCAL).date() == day for p in hourly["points"])
    assert local_hours[8]["value"] == pytest.approx(0.5) and local_hours[14]["value"] == pytest.approx(1.0)
    assert {h: p["value"] for h, p in local_hours.items() if h not in (8, 14)} == dict.fromkeys((9, 10, 11, 15, 16, 17), 0.0)

    daily = api.get("/api/v1/scopes/county/421303/trend", headers=headers, params=params | {"bucket": "day"}).json()
    values = {datetime.fromisoformat(p["bucket"]).astimezone(LOCAL).date(): p["value"] for p in daily["points"]}
    assert values == {day: pytest.approx(90 / 480, abs=1e-4)}


@pytest.mark.parametrize(("params", "reason"), [
    ({"keys": "board_online_rate", "hours": "lessons"}, "needs a period"),
    ({"keys": "silent_devices", "hours": "lessons", "period": "yesterday"}, "no lesson-hours lens for silent_devices"),
    ({"keys": "board_online_rate", "hours": "evenings", "period": "yesterday"}, "hours"),
])
def test_a_lens_that_cannot_be_asked_is_refused_with_the_reason(api, db, registry, params, reason):
    registry.area()
    registry.user("prov", "province", "420000")
    r = api.get("/api/v1/scopes/county/421303/figures", headers=login(api, "prov"), params=params)
    assert r.status_code == 422, r.text
    assert reason in r.text
