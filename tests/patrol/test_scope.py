"""The scope's SQL twin agrees with core.scope, and the patrol covers communities like any other scope."""

from datetime import timedelta

import pytest
from psycopg import sql

from core.scope import LEVELS, schools_of
from patrol.alerts import create_maintenance, create_silence, set_override
from patrol.report import load_round, run_round
from patrol.routing import create_team, teams_for_school
from patrol.workorders import response_times
from tests.patrol.conftest import LESSON_TIME

NOW = LESSON_TIME
COMMUNITY = "C42130301"


@pytest.fixture
def area(world):
    """Two cities; a community of a school in each of two counties (one in another city); a school outside it."""
    registry = world.registry
    registry.area()
    registry.area(city="420100", county="420102", names=("湖北省", "武汉市", "江岸区"))
    lead, outsider = registry.school(), registry.school()
    member = registry.school(county="420102", city="420100")
    world.db.execute("INSERT INTO community (code, name, kind, lead_school_code, county_code) "
                     "VALUES (%s, '跨区教联体', 'collaborative', %s, '421303')", (COMMUNITY, lead))
    world.db.execute("INSERT INTO community_member VALUES (%s, %s, 'lead', NULL), (%s, %s, 'member', NULL)",
                     (COMMUNITY, lead, COMMUNITY, member))
    return {"lead": lead, "member": member, "outsider": outsider}


SCOPES = [("province", "420000"), ("city", "421300"), ("city", "420100"), ("county", "421303"),
          ("county", "420102"), ("community", COMMUNITY), ("community", "C-none")]


@pytest.mark.parametrize(("level", "code"), SCOPES)
def test_the_sql_twin_selects_the_schools_core_scope_does(world, area, level, code):
    python = {r["code"] for r in world.db.execute(
        sql.SQL("SELECT s.code FROM school s WHERE {}").format(schools_of(level, "code")), {"code": code})}
    twin = {r["school_code"] for r in world.db.execute("SELECT school_code FROM scope_schools(%s, %s)", (level, code))}
    tested = {r["code"] for r in world.db.execute(
        "SELECT code FROM school WHERE school_in_scope(%s, %s, code) AND patrol_school_in_scope(%s, %s, code)",
        (level, code, level, code))}
    assert python == twin == tested
    for school in area.values():  # a school is a scope of its own
        assert {r["school_code"] for r in world.db.execute("SELECT * FROM scope_schools('school', %s)", (school,))} \
            == {school}


def test_the_sql_levels_are_core_scope_levels_ranked_wide_to_narrow(world):
    levels = world.db.execute("SELECT scope_levels() AS l").fetchone()["l"]
    assert set(levels) == set(LEVELS)
    ranks = {lv: world.db.execute("SELECT patrol_scope_rank(%s) AS r", (lv,)).fetchone()["r"] for lv in levels}
    assert ranks["province"] < ranks["city"] < ranks["county"] < ranks["community"] < ranks["school"]


def _offline_boards(world, area) -> dict[str, str]:
    boards = {name: world.registry.device(school, "board") for name, school in area.items()}
    for board in boards.values():
        world.offline(board, NOW - timedelta(hours=1))
    return boards


def test_a_community_silence_mutes_its_members_only(world, area):
    boards = _offline_boards(world, area)
    create_silence(world.db, ends_at=NOW + timedelta(hours=2), reason="联校检修", created_by="ops",
                   starts_at=NOW - timedelta(hours=1), scope_level="community", scope_code=COMMUNITY)
    world.cycle(NOW)
    silenced = {name: world.alert("device_offline", b)["silence_id"] is not None for name, b in boards.items()}
    assert silenced == {"lead": True, "member": True, "outsider": False}


def test_a_community_maintenance_window_opens_nothing_in_its_schools(world, area):
    boards = _offline_boards(world, area)
    create_maintenance(world.db, "community", COMMUNITY, NOW - timedelta(hours=1), NOW + timedelta(hours=1), "改造")
    world.cycle(NOW)
    assert {a["device_id"] for a in world.alerts()} == {boards["outsider"]}


def test_a_community_override_is_more_specific_than_the_county_and_less_than_the_school(world, area):
    set_override(world.db, "storage_low", "county", "421303", {"min_free_gb": 10})
    set_override(world.db, "storage_low", "community", COMMUNITY, {"min_free_gb": 20})
    set_override(world.db, "storage_low", "school", area["lead"], {"min_free_gb": 30})
    rows = world.db.execute("SELECT school_code, params ->> 'min_free_gb' AS gb FROM patrol_school_params "
                            "WHERE rule_id = 'storage_low'").fetchall()
    assert {r["school_code"]: r["gb"] for r in rows} == {area["lead"]: "30", area["member"]: "20",
                                                       area["outsider"]: "10"}


def test_a_community_team_gets_its_members_alerts_first_and_a_round_covers_them(world, area):
    county = create_team(world.db, "曾都运维", "county", "421303")
    community = create_team(world.db, "教联体运维", "community", COMMUNITY)
    assert [t["id"] for t in teams_for_school(world.db, area["lead"])] == [community, county]
    assert [t["id"] for t in teams_for_school(world.db, area["member"])] == [community]
    boards = _offline_boards(world, area)
    world.cycle(NOW)
    world.cycle(NOW + timedelta(minutes=10))  # past device_offline's for-duration: fired
    teams = {name: world.alert("device_offline", b)["team_id"] for name, b in boards.items()}
    assert teams == {"lead": community, "member": community, "outsider": county}

    later = NOW + timedelta(minutes=11)
    report = load_round(world.db, run_round(world.db, "community", COMMUNITY, later))
    assert {f["device_id"] for f in report["findings"]} == {boards["lead"], boards["member"]}
    assert report["checked"]["devices"]["board"] == {"devices": 2, "online": 0}
    assert report["summary"]["fired_24h"] == 2
    by_county = response_times(world.db, "community", COMMUNITY, NOW, later, "county")
    assert {r["scope_code"]: r["fired"] for r in by_county} == {"421303": 1, "420102": 1}
