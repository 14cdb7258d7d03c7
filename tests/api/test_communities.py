"""Communities (教联体): coverage, lists and detail bounded by the user's scope."""

import csv
import io
from datetime import UTC, datetime, time, timedelta

import pytest

from tests.fixtures.app import login


@pytest.fixture
def alliances(registry):
    """C1 led in Zengdu with members in Zengdu, Suixian and Wuhan; C2 in Suixian with 11 teaching points."""
    registry.area()
    registry.area(county="421321", names=("湖北省", "随州市", "随县"))
    registry.area(city="420100", county="420102", names=("湖北省", "武汉市", "江岸区"))
    s = {"lead": registry.school(county="421303"),
         "m1": registry.school(county="421303", locale="rural", stage="teaching_point"),
         "m2": registry.school(county="421303", locale="rural"),
         "m3": registry.school(county="421321", locale="rural"),
         "w1": registry.school(county="420102", city="420100", locale="rural"),
         "lead2": registry.school(county="421321", locale="town", stage="nine_year")}
    registry.school(county="421303", stage="senior")  # not compulsory education
    registry.school(county="421303")  # compulsory, in no community
    registry.school(county="421321", stage="junior")  # compulsory, in no community
    points = [registry.school(county="421321", locale="rural", stage="teaching_point") for _ in range(11)]
    registry.community(s["lead"], [s["m1"], s["m2"], s["m3"], s["w1"]], code="C1", kind="co_built", county="421303")
    registry.community(s["lead2"], points, code="C2", kind="merged", county="421321")
    d = {"R": registry.device(s["lead"], "recorder"), "B1": registry.device(s["m1"]),
         "B2": registry.device(s["m2"]), "B3": registry.device(s["m3"]), "G3": registry.device(s["m3"], "gateway")}
    for device_id, online in (("R", True), ("B1", True), ("B2", False), ("B3", True), ("G3", True)):
        registry.device_state(d[device_id], online=online)
    # one lesson from the lead to m1 and m3: two held sessions (m3 joined one) and a missed one
    registry.lesson(d["R"], [d["B1"], d["B3"]], lesson_id="L1", kind="dedicated", subject="音乐", community="C1",
                    weekday=1, starts="08:00", ends="08:40", valid_from="2020-01-01", valid_until="2030-01-01",
                    class_name="1班")
    today = datetime.now(UTC).date()
    for ago, status, joined in ((3, "held", ("B1", "B3")), (10, "held", ("B1",)), (17, "missed", ())):
        day = today - timedelta(days=ago)
        start = datetime.combine(day, time(0, 0), UTC)
        registry.lesson_session("L1", day, status=status, start=start, minutes=40,
                                receivers={d[r]: start if r in joined else None for r in ("B1", "B3")})
    registry.user("suizhou", "city", "421300")
    registry.user("zengdu", "county", "421303")
    registry.user("suixian", "county", "421321")
    registry.user("wuhan", "city", "420100")
    return s


def test_coverage_of_the_scope_and_its_children(api, alliances):
    body = api.get("/api/v1/scopes/city/421300/communities/coverage", headers=login(api, "suizhou")).json()
    f = body["figures"]
    # compulsory schools: Zengdu 4 (the senior school is not counted), Suixian 14; covered 3 + 13
    assert (f["compulsory_schools"], f["covered_schools"], f["coverage_rate"]) == (18, 16, round(16 / 18, 4))
    assert f["targets"] == []  # no community_coverage target is set (tests/api/test_targets.py sets them)
    assert f["communities"] == 2 and f["by_kind"] == {"merged": 1, "co_built": 1, "collaborative": 0, "mixed": 0}
    # C1 has 4 member schools, C2 has 11: average 7.5, one above the cap of 10; C1 crosses county lines
    assert (f["avg_members"], f["max_members"], f["over_cap"], f["cross_county"]) == (7.5, 11, 1, 1)
    kids = {c["code"]: c["figures"] for c in body["children"]}
    assert kids["421303"]["coverage_rate"] == 0.75
    assert kids["421303"]["targets"] == []
    assert kids["421321"]["coverage_rate"] == round(13 / 14, 4) and kids["421321"]["over_cap"] == 1
    assert kids["421303"]["cross_county"] == 1 and kids["421321"]["communities"] == 1


def test_list_counts_only_member_schools_inside_the_scope(api, alliances):
    rows = {r["code"]: r for r in api.get("/api/v1/scopes/city/421300/communities",
                                          headers=login(api, "suizhou")).json()}
    c1 = rows["C1"]
    assert set(rows) == {"C1", "C2"} and c1["lead_school_code"] == alliances["lead"]
    # members inside Suizhou: m1, m2, m3 (the Wuhan school is left out); boards B1, B2, B3 and a gateway
    assert (c1["members"], c1["member_devices"], c1["member_online"], c1["member_online_rate"]) == (3, 4, 3, 0.75)
    # held lessons from the lead: m1 joined 2, m3 joined 1, m2 none
    assert (c1["lessons_held"], c1["pairs_active"]) == (3, 2)
    zengdu = {r["code"]: r for r in api.get("/api/v1/scopes/county/421303/communities",
                                            headers=login(api, "zengdu")).json()}
    assert set(zengdu) == {"C1"} and (zengdu["C1"]["members"], zengdu["C1"]["lessons_held"]) == (2, 2)
    exported = api.get("/api/v1/scopes/city/421300/communities?format=csv", headers=login(api, "suizhou"))
    assert len(list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))) == 2


def test_detail_leaves_out_schools_outside_the_scope(api, alliances):
    s = alliances
    mine = api.get("/api/v1/communities/C1", headers=login(api, "zengdu")).json()
    assert [m["school_code"] for m in mine["member_schools"]] == [s["lead"], *sorted([s["m1"], s["m2"]])]
    held = {m["school_code"]: m["lessons_held"] for m in mine["member_schools"]}
    assert held == {s["lead"]: None, s["m1"]: 2, s["m2"]: 0}
    theirs = api.get("/api/v1/communities/C1", headers=login(api, "suixian")).json()
    assert [m["school_code"] for m in theirs["member_schools"]] == [s["m3"]] and theirs["lead_school_code"] is None


def test_other_scopes_are_not_found(api, alliances):
    assert api.get("/api/v1/communities/C2", headers=login(api, "wuhan")).status_code == 404
    assert api.get("/api/v1/communities/NOPE", headers=login(api, "suizhou")).status_code == 404
    headers = login(api, "suizhou")
    assert api.get("/api/v1/scopes/city/420100/communities/coverage", headers=headers).status_code == 404
    assert api.get("/api/v1/scopes/city/420100/communities", headers=headers).status_code == 404
