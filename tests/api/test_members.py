"""Which schools: the schools behind a figure, checked against plain SQL over the device rows and
against this suite's own worked-out figures (tests/api/test_periods.py's small small_province), with
their order, the name filter, paging totals, exports and the user's bounds."""

import csv
import io
from datetime import datetime

import pytest
from openpyxl import load_workbook

from api.metrics.catalogue import FIGURES
from tests.api import test_periods
from tests.api.test_periods import Asked, expected, value_of
from tests.fixtures.app import login
from tests.fixtures.factories import LOCAL

small_province = test_periods.province  # that module's fixture (two cities, three schools, daily rollups)
SCHOOLS = "/api/v1/scopes/{}/schools"
PERIODS = {"yesterday": {"period": "yesterday"}, "last_month": {"period": "last_month"}}

# Per school over a period, from device_daily and the registry (the catalogue reads school_daily):
# online device-minutes over in-service device-minutes, and boards with no use over boards.
_REFERENCE = """
WITH inservice AS (
    SELECT d.id, d.kind, d.school_code,
           greatest(%(start)s, least(d.registered_at, d.installed_on::timestamp AT TIME ZONE %(tz)s)) AS since
    FROM device d
    WHERE least(d.registered_at, d.installed_on::timestamp AT TIME ZONE %(tz)s) < %(until)s),
per_device AS (
    SELECT i.id, i.kind, i.school_code, extract(epoch FROM %(until)s - i.since) / 60 AS minutes,
           coalesce((SELECT sum(r.online_minutes) FROM device_daily r WHERE r.device_id = i.id
                     AND r.bucket >= %(start)s AND r.bucket < %(end)s), 0) AS online,
           coalesce((SELECT sum(r.active_use_s) FROM device_daily r WHERE r.device_id = i.id
                     AND r.bucket >= %(start)s AND r.bucket < %(end)s), 0) AS use_s
    FROM inservice i)
SELECT s.code, sum(p.online) AS online, sum(p.minutes) AS minutes,
       count(*) FILTER (WHERE p.kind = 'board' AND p.use_s = 0) AS unused,
       count(*) FILTER (WHERE p.kind = 'board') AS boards
FROM school s LEFT JOIN per_device p ON p.school_code = s.code
WHERE s.county_code = ANY(%(counties)s)
GROUP BY s.code
"""


def _reference(db, body: dict, counties: list[str]) -> dict[str, dict]:
    period = body["period"]
    rows = db.execute(_REFERENCE, {"start": datetime.fromisoformat(period["start"]),
                                   "end": datetime.fromisoformat(period["end"]),
                                   "until": datetime.fromisoformat(period["until"]), "tz": str(LOCAL),
                                   "counties": counties}).fetchall()
    return {r["code"]: {
        "online_rate": round(float(r["online"]) / float(r["minutes"]), 4) if r["minutes"] else None,
        "boards_unused_share": round(r["unused"] / r["boards"], 4) if r["boards"] else None} for r in rows}


def _get(api, headers, scope: str, **params):
    r = api.get(SCHOOLS.format(scope), params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def _expected_order(values: dict[str, float | None], key: str, order: str) -> list[str]:
    """Codes worst (or best) first by the figure, schools without a value last, ties by code."""
    ascending = (order == "worst") == (FIGURES[key].better == "higher")
    valued = sorted((c for c, v in values.items() if v is not None),
                    key=lambda c: ((values[c] if ascending else -values[c]), c))
    return valued + sorted(c for c, v in values.items() if v is None)


@pytest.mark.parametrize("period", PERIODS)
@pytest.mark.parametrize("key", ["online_rate", "boards_unused_share"])
@pytest.mark.parametrize("order", ["worst", "best"])
def test_school_values_and_order_agree_with_plain_sql(api, db, small_province, period, key, order):
    body = _get(api, login(api, "province"), "province/420000", figure=key, order=order, **PERIODS[period])
    reference = _reference(db, body, ["421303", "420102"])
    assert body["total"] == 3 and len(body["items"]) == 3
    got = {i["code"]: i["value"] for i in body["items"]}
    assert got == pytest.approx({c: r[key] for c, r in reference.items()}, abs=1e-4)
    assert [i["code"] for i in body["items"]] == _expected_order(got, key, order)
    assert [i["rank"] for i in body["items"]] == [1, 2, 3]
    assert len({v for v in got.values()}) > 1, "the schools must differ for the order to be tested"


@pytest.mark.parametrize("period", ["yesterday", "last_month", "custom"])
def test_every_figure_of_every_school_as_worked_out(api, small_province, period):
    headers = login(api, "province")
    params = ({"from": small_province.days["last_5"].isoformat(), "to": small_province.days["last_20"].isoformat()}
              if period == "custom" else {"period": period})
    for key in FIGURES:
        body = _get(api, headers, "province/420000", figure=key, **params)
        asked, before = Asked.of(body["period"]), Asked.of(body["period"]["previous"])
        assert {i["code"] for i in body["items"]} == set(small_province.schools)
        for item in body["items"]:
            school = lambda s, code=item["code"]: s.code == code  # noqa: E731
            value = value_of(key, *expected(small_province, asked, school)[key])
            previous = value_of(key, *expected(small_province, before, school)[key])
            assert item["value"] == pytest.approx(value, abs=1e-4), (key, item)
            assert item["previous"] == pytest.approx(previous, abs=1e-4), (key, item)
            assert item["county_name"] in ("曾都区", "江岸区") and item["city_name"] in ("随州市", "武汉市")


@pytest.mark.parametrize("params", [{}, {"period": "yesterday"}, {"period": "last_month", "hours": "lessons"}])
def test_a_county_s_schools_are_the_children_of_its_figures(api, small_province, params):
    """At a county the children are its schools: the list and the figures give each the same numbers
    (now, over a period, and over its lesson hours for the figures that have them)."""
    headers = login(api, "zengdu")
    keys = [k for k, f in FIGURES.items() if "hours" not in params or f.lessons is not None]
    assert keys
    for key in keys:
        figures = api.get("/api/v1/scopes/county/421303/figures", params={"keys": key, **params},
                          headers=headers).json()
        kids = {c["code"]: c["figures"][key] for c in figures["children"]}
        body = _get(api, headers, "county/421303", figure=key, **params)
        assert {i["code"]: (i["value"], i["num"], i["den"]) for i in body["items"]} == {
            c: (f["value"], f["num"], f["den"]) for c, f in kids.items()}, key
        assert ("period" in body) == bool(params) and all(("previous" in i) == bool(params) for i in body["items"])
        assert body.get("hours") == params.get("hours")


def test_the_name_filter_paging_and_the_total(api, small_province):
    headers = login(api, "province")
    every = _get(api, headers, "province/420000", figure="devices", order="best")
    codes = [i["code"] for i in every["items"]]
    page = _get(api, headers, "province/420000", figure="devices", order="best", limit=1, offset=1)
    assert (page["total"], page["limit"], page["offset"]) == (3, 1, 1)
    assert [(i["code"], i["rank"]) for i in page["items"]] == [(codes[1], 2)]
    beyond = _get(api, headers, "province/420000", figure="devices", limit=5, offset=10)
    assert beyond["total"] == 3 and beyond["items"] == []  # past the end: nothing, but the total still says 3
    name = every["items"][0]["name"]
    found = _get(api, headers, "province/420000", figure="devices", q=name[-3:])
    assert [i["code"] for i in found["items"]] == [codes[0]] and found["total"] == 1 and found["q"] == name[-3:]
    by_code = _get(api, headers, "province/420000", figure="devices", q=codes[2])
    assert [i["code"] for i in by_code["items"]] == [codes[2]]
    assert _get(api, headers, "province/420000", figure="devices", q="没有这所学校")["total"] == 0
    county = _get(api, headers, "province/420000", figure="devices", q="江岸")  # a county's name
    assert [i["county_name"] for i in county["items"]] == ["江岸区"] and county["total"] == 1


@pytest.mark.parametrize("order", ["worst", "best"])
def test_an_order_by_the_change_since_the_previous_period(api, small_province, order):
    body = _get(api, login(api, "province"), "province/420000", figure="online_rate", period="yesterday", by="change",
                order=order)
    changes = {i["code"]: i["change"] for i in body["items"]}
    assert body["by"] == "change" and len(set(changes.values())) > 1
    assert [i["code"] for i in body["items"]] == _expected_order(changes, "online_rate", order)


def test_exports_hold_every_match_with_the_period_s_columns(api, small_province):
    headers = login(api, "province")
    params = {"figure": "online_rate", "period": "yesterday", "limit": 1}
    body = _get(api, headers, "province/420000", **params)
    r = api.get(SCHOOLS.format("province/420000"), params={**params, "format": "csv"}, headers=headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert f"schools-online_rate-420000-{body['period']['from']}_" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert list(rows[0]) == ["rank", "code", "name", "county_name", "city_name", "value", "num", "den",
                             "previous", "change"]
    assert len(rows) == body["total"] == 3  # not just the page of one
    assert rows[0]["code"] == body["items"][0]["code"]
    assert float(rows[0]["value"]) == body["items"][0]["value"]
    x = api.get(SCHOOLS.format("province/420000"), params={"figure": "devices", "format": "xlsx"}, headers=headers)
    sheet = load_workbook(io.BytesIO(x.content)).active
    header, *data = list(sheet.values)
    assert header == ("rank", "code", "name", "county_name", "city_name", "value", "num", "den") and len(data) == 3


def test_a_user_sees_only_the_schools_inside_their_bounds(api, small_province):
    zengdu = login(api, "zengdu")
    mine = {c for c, s in small_province.schools.items() if s.county == "421303"}
    assert {i["code"] for i in _get(api, zengdu, "county/421303")["items"]} == mine
    for other in ("county/420102", "city/420100", "province/420000", "city/421300"):
        r = api.get(SCHOOLS.format(other), headers=zengdu)
        assert r.status_code == 404, (other, r.text)
    suizhou = login(api, "suizhou")
    assert {i["code"] for i in _get(api, suizhou, "city/421300")["items"]} == mine
    assert api.get(SCHOOLS.format("city/420100"), headers=suizhou).status_code == 404
    assert api.get(SCHOOLS.format("county/421303")).status_code == 401


def test_a_community_lists_its_member_schools(api, small_province, registry):
    a, b, c = small_province.schools
    registry.community(a, [c], code="C42130301", county="421303")
    registry.user("community", "community", "C42130301")
    body = _get(api, login(api, "community"), "community/C42130301", figure="devices")
    assert {i["code"] for i in body["items"]} == {a, c} and body["total"] == 2


@pytest.mark.parametrize(("params", "reason"), [
    ({"figure": "no_such_figure"}, "unknown figure"),
    ({"order": "sideways"}, "worst"),
    ({"limit": 0}, "greater than or equal to 1"),
    ({"offset": -1}, "greater than or equal to 0"),
    ({"q": "a\x00b"}, "U+0000"),
    ({"q": "x" * 65}, "at most 64"),
    ({"period": "yesterday", "from": "2024-03-01"}, "either period or from/to"),
    ({"format": "pdf"}, "json"),
    ({"hours": "lessons"}, "needs a period"),
    ({"by": "change"}, "needs a period"),
    ({"by": "name"}, "change"),
])
def test_bad_input_is_refused_with_the_reason(api, small_province, params, reason):
    r = api.get(SCHOOLS.format("province/420000"), params=params, headers=login(api, "province"))
    assert r.status_code == 422, r.text
    body = r.json()
    assert reason in body["detail"] + " ".join(e["msg"] for e in body.get("errors") or [])


def test_now_values_follow_the_devices_state(api, db, small_province, registry):
    """Without a period: each school's online rate now, from the devices' current state."""
    online = [d.id for d in small_province.devices if d.kind == "board"][:2]  # both boards of the first school
    for d in small_province.devices:
        registry.device_state(d.id, online=d.id in online)
    rows = db.execute("SELECT d.school_code, count(*) FILTER (WHERE st.online) AS online, count(*) AS devices "
                      "FROM device d JOIN device_state st ON st.device_id = d.id GROUP BY 1").fetchall()
    reference = {r["school_code"]: round(r["online"] / r["devices"], 4) for r in rows}
    body = _get(api, login(api, "province"), "province/420000")
    assert {i["code"]: i["value"] for i in body["items"]} == reference
    assert body["items"][-1]["value"] == max(reference.values())  # worst first: the best school last
    assert "period" not in body and datetime.fromisoformat(body["as_of"]).tzinfo is not None
