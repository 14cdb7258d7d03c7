"""The seeded demo province: deterministic, realistic, and loadable into the real schema."""

from collections import Counter

import pytest

from core.seed.generator import COMPULSORY, generate, seed_database


@pytest.fixture(scope="module")
def demo():
    return generate("demo")


def test_generation_is_deterministic(demo):
    again = generate("demo")
    for table in ("school", "community", "community_member", "device", "remote_lesson", "remote_lesson_receiver"):
        assert getattr(again, table) == getattr(demo, table), table
    assert generate("demo", seed=7).school != demo.school


def test_the_real_divisions_of_hubei_are_all_there(demo):
    assert len(demo.city) == 17 and len(demo.county) == 103
    names = {c[2] for c in demo.city}
    assert {"武汉市", "随州市", "恩施土家族苗族自治州", "神农架林区"} <= names
    counties = {c[0]: c[1] for c in demo.county}
    assert all(counties[s[2]] == s[3] for s in demo.school), "every school's county belongs to its city"


def test_schools_are_plausible(demo):
    assert 150 <= len(demo.school) <= 400 and len(demo.device) <= 4000
    for s in demo.school:
        if s[6] == "teaching_point":
            assert s[5] == "rural" and s[8] < 50 and s[7] <= 3
    urban = [s[8] for s in demo.school if s[5] == "urban"]
    rural = [s[8] for s in demo.school if s[5] == "rural"]
    assert sum(urban) / len(urban) > 3 * sum(rural) / len(rural)
    kinds = Counter(d[1] for d in demo.device)
    assert kinds["gateway"] == len(demo.school) and kinds["recorder"] > 0


def test_communities_cover_most_compulsory_schools_and_stay_small(demo):
    compulsory = {s[0] for s in demo.school if s[6] in COMPULSORY}
    members = {m[1] for m in demo.community_member}
    assert 0.6 <= len(compulsory & members) / len(compulsory) <= 0.85
    assert max(Counter(m[0] for m in demo.community_member if m[2] == "member").values()) <= 10
    assert all(sum(1 for m in demo.community_member if m[0] == c[0] and m[2] == "lead") == 1 for c in demo.community)


def test_remote_lessons_reach_other_schools(demo):
    school_of = {d[0]: d[2] for d in demo.device}
    main_of = {lesson[0]: school_of[lesson[3]] for lesson in demo.remote_lesson}
    assert demo.remote_lesson_receiver
    assert all(school_of[r[1]] != main_of[r[0]] for r in demo.remote_lesson_receiver)


def test_seeding_loads_once(database_url, db):
    counts = seed_database(database_url, "demo")
    assert db.execute("SELECT count(*) AS n FROM device").fetchone()["n"] == counts["device"]
    with pytest.raises(RuntimeError, match="already has schools"):
        seed_database(database_url, "demo")
