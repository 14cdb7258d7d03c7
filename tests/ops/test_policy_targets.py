"""The seeded policy targets: rows of the target table that a fresh province shows on 目标调度."""

from datetime import date

from api.targets.measures import MEASURES, TARGETABLE
from ops.seed.generator import DEMO_PASSWORD, generate, seed_database


def test_the_policy_targets_are_seeded_on_the_province():
    rows = generate("demo").target
    assert {(r[0], r[1]) for r in rows} == {("province", "420000")}
    by_key = {}
    for _level, _code, key, comparator, value, deadline, _note, _by in rows:
        assert key in TARGETABLE
        assert key not in MEASURES or comparator == MEASURES[key].comparator
        by_key.setdefault(key, []).append((comparator, value, deadline))
    assert by_key["community_coverage"] == [(">=", 0.70, date(2024, 12, 31)), (">=", 0.80, date(2025, 12, 31))]
    assert [v for _, v, _ in by_key["equity_cv_primary"] + by_key["equity_cv_junior"]] == [0.50, 0.45]
    assert {"online_rate", "lesson_opening_rate", "teaching_point_reach"} <= set(by_key)


def test_a_fresh_province_shows_them_on_the_targets_page(api, database_url, db):
    seed_database(database_url, "demo")
    token = api.post("/api/v1/auth/token", data={"username": "province", "password": DEMO_PASSWORD}).json()
    progress = api.get("/api/v1/scopes/province/420000/targets",
                       headers={"Authorization": f"Bearer {token['access_token']}"}).json()
    assert sorted(p["target"]["figure"] for p in progress) == sorted(r[2] for r in generate("demo").target)
    covered = db.execute(
        "SELECT count(*) FILTER (WHERE s.code IN (SELECT school_code FROM community_member))::float / count(*) AS r "
        "FROM school s WHERE s.stage IN ('primary', 'junior', 'nine_year', 'teaching_point')").fetchone()["r"]
    coverage = [p for p in progress if p["target"]["figure"] == "community_coverage"]
    assert {p["scope_value"] for p in coverage} == {round(covered, 4)}
    assert len(coverage[0]["children"]) == 17  # every city in the league table
