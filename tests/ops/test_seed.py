"""The seeded province: deterministic, realistic, and loadable into the real schema."""

import re
from collections import Counter, defaultdict
from datetime import date

import pytest

from core.security import needs_rehash, verify_password
from ops.seed.generator import (
    COMPULSORY,
    DEMO_PASSWORD,
    RegistryNotEmptyError,
    generate,
    seed_database,
)
from ops.seed.schools import HOME_CITY


@pytest.fixture(scope="module")
def demo():
    return generate("demo")


@pytest.fixture(scope="module")
def device_school(demo) -> dict[str, str]:
    return {d[0]: d[2] for d in demo.device}


def test_generation_is_deterministic(demo):
    assert generate("demo") == demo
    assert generate("demo", seed=7).school != demo.school


def test_the_real_divisions_of_hubei_are_all_there(demo):
    assert len(demo.city) == 17 and len(demo.county) == 103
    names = {c[2] for c in demo.city}
    assert {"武汉市", "随州市", "恩施土家族苗族自治州", "仙桃市", "潜江市", "天门市", "神农架林区"} <= names
    counties = {c[0]: c[1] for c in demo.county}
    assert counties["421303"] == "421300" and counties["422801"] == "422800"
    assert all(counties[s[2]] == s[3] for s in demo.school), "every school's county belongs to its city"
    assert {s[2] for s in demo.school} == set(counties), "every county has schools"


def test_demo_is_small_but_covers_the_province(demo):
    assert 250 <= len(demo.school) <= 350
    assert len(demo.device) <= 4000
    assert max(Counter(d[2] for d in demo.device if d[1] == "board").values()) <= 12
    per_county = Counter(s[2] for s in demo.school)
    assert per_county["421303"] > per_county["420102"], "the home city 随州 is richer"


def test_every_county_of_the_home_city_has_schools_enough_to_rank_and_compare(demo):
    home = [c[0] for c in demo.county if c[1] == HOME_CITY]
    assert len(home) == 3
    for county in home:
        schools = [s for s in demo.school if s[2] == county]
        assert len(schools) >= 8
        assert {"urban", "town", "rural"} <= {s[5] for s in schools}
        primary = [s for s in schools if s[6] in ("primary", "nine_year") and s[8] >= 50]
        junior = [s for s in schools if s[6] in ("junior", "nine_year")]
        assert len(primary) >= 5 and len(junior) >= 3, "both equity groups have schools to compare"
        assert Counter(d[2] for d in demo.device if d[1] == "board" and d[2] in {s[0] for s in schools})
    others = Counter(s[2] for s in demo.school if s[3] != HOME_CITY)
    assert max(others.values()) <= 4, "the rest of the province stays small"


def test_codes_and_ids_are_valid(demo):
    codes = [s[0] for s in demo.school]
    assert len(set(codes)) == len(codes) and all(re.fullmatch(r"[0-9]{10}", c) for c in codes)
    ids = [d[0] for d in demo.device]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"[A-Za-z0-9_-]{3,64}", i) for i in ids)
    assert all(lesson[0].isascii() for lesson in demo.remote_lesson)
    assert len({s[1] for s in demo.school}) == len(demo.school), "school names are unique"


def test_schools_are_plausible(demo):
    for s in demo.school:
        if s[6] == "teaching_point":
            assert s[5] == "rural" and s[8] < 50 and 1 <= s[7] <= 3 and 1 <= s[9] <= 4
    urban = [s[8] for s in demo.school if s[5] == "urban"]
    rural = [s[8] for s in demo.school if s[5] == "rural"]
    assert sum(urban) / len(urban) > 3 * sum(rural) / len(rural)
    assert min(s[10] for s in demo.school) < 100, "some links are below the 100 Mbit/s floor"
    kinds = Counter(d[1] for d in demo.device)
    assert kinds["gateway"] == len(demo.school) and kinds["recorder"] > 0


def test_communities_cover_most_compulsory_schools_and_stay_small(demo):
    compulsory = {s[0] for s in demo.school if s[6] in COMPULSORY}
    members = [m[1] for m in demo.community_member]
    assert len(members) == len(set(members)), "a school belongs to one community"
    assert 0.6 <= len(compulsory & set(members)) / len(compulsory) <= 0.8
    assert max(Counter(m[0] for m in demo.community_member if m[2] == "member").values()) <= 10
    leads = {m[0]: m[1] for m in demo.community_member if m[2] == "lead"}
    assert len(leads) == len(demo.community)
    assert all(leads[c[0]] == c[3] for c in demo.community)
    teaching_points = {s[0] for s in demo.school if s[6] == "teaching_point"}
    assert len(teaching_points & set(members)) > 0.5 * len(teaching_points)


def test_remote_lessons_go_from_a_recorder_to_boards_at_other_schools(demo, device_school):
    kind_of = {d[0]: d[1] for d in demo.device}
    main_of = {lesson[0]: lesson[3] for lesson in demo.remote_lesson}
    assert demo.remote_lesson_receiver and {lesson[1] for lesson in demo.remote_lesson} == {"dedicated", "master",
                                                                                           "elite"}
    assert all(kind_of[main] == "recorder" for main in main_of.values())
    for lesson_id, device_id, _ in demo.remote_lesson_receiver:
        assert kind_of[device_id] == "board"
        assert device_school[device_id] != device_school[main_of[lesson_id]]


def test_no_device_is_booked_twice_in_a_period(demo):
    slot = {lesson[0]: (lesson[5], lesson[6]) for lesson in demo.remote_lesson}
    booked = defaultdict(list)
    for lesson in demo.remote_lesson:
        booked[lesson[3]].append(slot[lesson[0]])
        assert 1 <= lesson[5] <= 5 and lesson[8:] == (date(2026, 9, 1), date(2027, 1, 22))
    for lesson_id, device_id, _ in demo.remote_lesson_receiver:
        booked[device_id].append(slot[lesson_id])
    assert all(len(slots) == len(set(slots)) for slots in booked.values())


def test_the_calendar_knows_holidays_make_up_days_and_vacations(demo):
    days = {d[0]: d[1] for d in demo.calendar_day}
    assert days[date(2026, 10, 1)] is False and days[date(2026, 10, 10)] is True
    assert days[date(2026, 1, 4)] is True and days[date(2026, 2, 28)] is False  # inside the winter vacation
    assert days[date(2026, 8, 3)] is False and date(2026, 11, 25) not in days


def test_demo_users_log_in_with_the_demo_password(demo):
    users = {u[0]: u for u in demo.app_user}
    assert {"admin", "province", "suizhou", "wuhan", "zengdu", "ops-zengdu", "school", "community"} <= set(users)
    assert users["zengdu"][3:] == ("manager", "county", "421303")
    admin_hash = users["admin"][2]
    assert verify_password(admin_hash, DEMO_PASSWORD) and not verify_password(admin_hash, "wrong")
    assert not verify_password("not-a-hash", DEMO_PASSWORD) and not needs_rehash(admin_hash)
    assert users["community"][5] in {c[0] for c in demo.community}


def test_seeding_loads_once_and_replaces_on_request(database_url, db):
    counts = seed_database(database_url, "demo")
    assert db.execute("SELECT count(*) AS n FROM device").fetchone()["n"] == counts["device"]
    assert db.execute("SELECT count(*) AS n FROM school").fetchone()["n"] == counts["school"]
    with pytest.raises(RegistryNotEmptyError, match="already has .* schools"):
        seed_database(database_url, "demo")
    again = seed_database(database_url, "demo", seed=7, replace=True)
    assert db.execute("SELECT count(*) AS n FROM device").fetchone()["n"] == again["device"]
