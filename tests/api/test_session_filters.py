"""The session list filters by day, period, kind and state, pages with a total that never lies, says
which days it lists, and exports every match of the filters."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from tests.api import test_lessons
from tests.fixtures.app import login

area, week42 = test_lessons.area, test_lessons.week42  # three sessions in 2024-W42: L1 (Mon), L2 (Tue), L3 (Wed)
SESSIONS = "/api/v1/scopes/city/421300/lessons/sessions"
WEEK = {"day_from": "2024-10-14", "day_to": "2024-10-20"}


@pytest.fixture
def suizhou(api, week42):
    return login(api, "suizhou")


def _page(api, headers, **params) -> dict:
    r = api.get(SESSIONS, params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_day_a_kind_and_a_state_narrow_the_list(api, suizhou):
    tuesday = _page(api, suizhou, day_from="2024-10-15", day_to="2024-10-15")
    assert [i["lesson_id"] for i in tuesday["items"]] == ["L2"] and tuesday["total"] == 1
    assert (tuesday["day_from"], tuesday["day_to"]) == ("2024-10-15", "2024-10-15")
    assert [i["lesson_id"] for i in _page(api, suizhou, **WEEK, kind="master")["items"]] == ["L3"]
    held = _page(api, suizhou, **WEEK, status="held")
    assert [i["lesson_id"] for i in held["items"]] == ["L3", "L1"]  # newest first
    assert _page(api, suizhou, **WEEK, status="held", kind="elite")["total"] == 0


def test_a_period_gives_the_days(api, suizhou):
    body = _page(api, suizhou, **{"from": "2024-10-14", "to": "2024-10-15"})
    assert (body["day_from"], body["day_to"]) == ("2024-10-14", "2024-10-15")
    assert [i["lesson_id"] for i in body["items"]] == ["L2", "L1"]


def test_without_days_the_last_seven_are_listed_and_said(api, suizhou):
    body = _page(api, suizhou)
    today = datetime.now(UTC).date()
    assert (body["day_from"], body["day_to"]) == ((today - timedelta(days=6)).isoformat(), today.isoformat())
    assert body["total"] == 0  # the sessions of 2024 are not silently among them


def test_pages_cover_every_match_and_the_total_holds_past_the_last(api, suizhou):
    pages = [_page(api, suizhou, **WEEK, page=n, page_size=1) for n in (1, 2, 3)]
    assert [p["items"][0]["lesson_id"] for p in pages] == ["L3", "L2", "L1"]
    assert {p["total"] for p in pages} == {3}
    beyond = _page(api, suizhou, **WEEK, page=4, page_size=1)
    assert beyond["items"] == [] and beyond["total"] == 3 and beyond["page"] == 4


def test_the_export_holds_every_match_of_the_filters(api, suizhou):
    r = api.get(SESSIONS, params={**WEEK, "kind": "dedicated", "page_size": 1, "format": "csv"}, headers=suizhou)
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert sorted(row["lesson_id"] for row in rows) == ["L1", "L2"]  # both, though a page holds one


@pytest.mark.parametrize(("params", "reason"), [
    ({"day_from": "2024-10-20", "day_to": "2024-10-14"}, "span 0 to 366 days"),
    ({"period": "yesterday", "day_from": "2024-10-14"}, "not both"),
    ({"kind": "lecture"}, "dedicated"),
    ({"status": "late"}, "held"),
    ({"page": 0}, "greater than or equal to 1"),
    ({"page_size": 501}, "less than or equal to 500"),
])
def test_bad_filters_are_refused_with_the_reason(api, suizhou, params, reason):
    r = api.get(SESSIONS, params=params, headers=suizhou)
    assert r.status_code == 422, r.text
    body = r.json()
    assert reason in body["detail"] + " ".join(e["msg"] for e in body.get("errors") or [])
