"""The enrolment-weighted coefficient of variation, checked against a county worked out by hand."""

import math

import pytest

from tests.fixtures.app import login


def weighted_cv(values: list[tuple[float, float]]) -> float:
    """CV of (X_i, P_i) pairs as the 优质均衡 standard defines it."""
    total = sum(p for _, p in values)
    mean = sum(x * p for x, p in values) / total
    s = math.sqrt(sum(p / total * (x - mean) ** 2 for x, p in values))
    return s / mean


@pytest.fixture
def county(registry):
    registry.area()
    # (students, boards, uplink): boards per 100 students 2.0, 3.0, 1.0; Mbit/s per student 2.0, 1.0, 0.5
    schools = [registry.school(students=500, classes=10, uplink_mbps=1000),
               registry.school(students=300, classes=9, uplink_mbps=300, locale="town"),
               registry.school(students=200, classes=2, uplink_mbps=100, locale="rural")]
    for school, boards in zip(schools, (10, 9, 2), strict=True):
        for _ in range(boards):
            registry.device(school)
    tiny = registry.school(students=30, classes=2, stage="teaching_point", locale="rural", uplink_mbps=50)
    registry.device(tiny)  # under 50 students: left out, as the standard does
    junior = registry.school(students=800, classes=16, stage="junior")
    registry.device(junior)
    registry.user("zengdu", "county", "421303")
    return schools


def test_weighted_cv_matches_the_hand_computation(api, county):
    body = api.get("/api/v1/scopes/county/421303/equity", headers=login(api, "zengdu")).json()
    [only] = body["counties"]
    primary = next(g for g in only["groups"] if g["group"] == "primary")
    cv = {i["indicator"]: i for i in primary["indicators"]}
    assert primary["schools"] == 3 and primary["students"] == 1000
    # boards per 100 students: mean 2.1, S = 0.7, CV = 1/3
    assert cv["boards_per_100_students"]["mean"] == 2.1
    assert cv["boards_per_100_students"]["cv"] == round(weighted_cv([(2, 500), (3, 300), (1, 200)]), 4) == 0.3333
    assert cv["mbps_per_student"]["cv"] == round(weighted_cv([(2, 500), (1, 300), (0.5, 200)]), 4)
    present = [i["cv"] for i in primary["indicators"] if i["cv"] is not None]
    assert primary["composite_cv"] == round(sum(present) / len(present), 4)
    # three schools are too few to judge (样本不足), and no 差异系数 target is set: no bar, no verdict
    assert (primary["judged"], primary["bar"], primary["target"], primary["passes"]) == (False, None, None, None)
    assert body["min_schools"] == 5
    junior = next(g for g in only["groups"] if g["group"] == "junior")
    assert junior["schools"] == 1 and junior["indicators"][0]["cv"] == 0.0


def test_urban_rural_gap(api, county):
    body = api.get("/api/v1/scopes/county/421303/equity", headers=login(api, "zengdu")).json()
    gap = {g["indicator"]: g for g in body["gap"]}["boards_per_100_students"]
    # urban schools: the 500-student primary (2.0) and the 800-student junior (0.125) → (1000 + 100) / 1300
    assert gap["urban"] == round((2.0 * 500 + 0.125 * 800) / 1300, 4)
    assert gap["town"] == 3.0 and gap["rural"] == 1.0
    assert gap["rural_to_urban"] == round(1.0 / ((2.0 * 500 + 0.125 * 800) / 1300), 4)
