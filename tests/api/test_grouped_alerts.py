"""Alerts grouped under a root cause can be opened: each listed alert says how many it groups, and
its grouped alerts are listed (and exported) inside the user's scope only."""

import csv
import io

import pytest

from tests.api import test_patrol
from tests.fixtures.app import login

incident = test_patrol.incident  # a gateway down at one school, two board alerts grouped under it
_alert = test_patrol._alert


@pytest.fixture
def grouped(db, registry, incident):
    """The incident, one more of its board alerts already resolved, and an alert of another city
    grouped under the same root (out of the county user's sight)."""
    school = incident["school"]
    board = registry.device(school, room="305")
    resolved = _alert(db, "device_offline", board, school, state="resolved", inhibited_by=incident["root"])
    wuhan = db.execute("SELECT code FROM school WHERE county_code = '420102'").fetchone()["code"]
    outside = _alert(db, "device_offline", registry.device(wuhan), wuhan, inhibited_by=incident["root"])
    open_ = [r["id"] for r in db.execute("SELECT id FROM alert WHERE inhibited_by = %s AND school_code = %s "
                                         "AND state <> 'resolved' ORDER BY id", (incident["root"], school))]
    registry.user("admin", "province", "420000", role="admin")
    return {**incident, "resolved": resolved, "outside": outside, "open": open_}


def test_a_listed_alert_says_how_many_it_groups(api, grouped):
    listed = api.get("/api/v1/scopes/county/421303/alerts", headers=login(api, "ops")).json()
    assert [(a["id"], a["grouped"]) for a in listed] == [(grouped["root"], 2)]  # not the resolved one
    province = api.get("/api/v1/scopes/province/420000/alerts", headers=login(api, "admin")).json()
    counts = {a["id"]: a["grouped"] for a in province}
    assert counts[grouped["root"]] == 3 and counts[grouped["foreign"]] == 0  # the Wuhan one too, for the province
    with_inhibited = api.get("/api/v1/scopes/county/421303/alerts", params={"include_inhibited": True},
                             headers=login(api, "ops")).json()
    assert {a["id"]: a["grouped"] for a in with_inhibited} == {grouped["root"]: 2, **dict.fromkeys(grouped["open"], 0)}


def test_the_grouped_alerts_are_listed_inside_the_scope(api, grouped):
    headers = login(api, "ops")
    r = api.get(f"/api/v1/alerts/{grouped['root']}/grouped", headers=headers)
    assert r.status_code == 200, r.text
    rows = r.json()
    assert sorted(a["id"] for a in rows) == grouped["open"]
    assert all(a["inhibited_by"] == grouped["root"] and a["school_code"] == grouped["school"] for a in rows)
    assert all(a["device_kind"] == "board" and a["rule_title"] and a["school_name"] for a in rows)
    everything = api.get(f"/api/v1/alerts/{grouped['root']}/grouped",
                         params={"state": ["firing", "resolved"]}, headers=headers).json()
    assert sorted(a["id"] for a in everything) == sorted([*grouped["open"], grouped["resolved"]])
    admin = api.get(f"/api/v1/alerts/{grouped['root']}/grouped", headers=login(api, "admin")).json()
    assert sorted(a["id"] for a in admin) == sorted([*grouped["open"], grouped["outside"]])


def test_grouped_alerts_export_and_refusals(api, grouped):
    headers = login(api, "ops")
    r = api.get(f"/api/v1/alerts/{grouped['root']}/grouped", params={"format": "csv"}, headers=headers)
    assert r.status_code == 200 and f"alerts-grouped-{grouped['root']}.csv" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert sorted(int(row["id"]) for row in rows) == grouped["open"] and "grouped" in rows[0]
    assert api.get(f"/api/v1/alerts/{grouped['foreign']}/grouped", headers=headers).status_code == 404
    assert api.get("/api/v1/alerts/999999/grouped", headers=headers).status_code == 404
    assert api.get(f"/api/v1/alerts/{grouped['root']}/grouped").status_code == 401
    bad = api.get(f"/api/v1/alerts/{grouped['root']}/grouped", params={"state": "gone"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["query", "state", 0]
