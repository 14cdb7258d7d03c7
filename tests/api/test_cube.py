"""A province's and a city's figures over a period read the counties' running totals
(sql/023_county_cube.sql); they must be exactly what the per-school rows give.

Random registries (devices coming into service before and inside the periods, some with no
installation day), random readings through the real rollups (late ones after a first refresh,
readings from before a device came into service), random periods and both lenses: every figure
that has a county twin, for the province and each city, with and without the totals, equal; and
the totals are in fact used. Then the things that make totals stale: a school moving county and a
calendar change, after which the answer is still the per-school one.
"""

from datetime import datetime, time, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.auth.models import User
from api.metrics import service
from api.metrics.catalogue import FIGURES, cube_of
from api.scopes.access import resolve
from core.period import parse_period
from rollups.service import recount_counties, refresh
from tests.fixtures.factories import LOCAL

TZ = "Asia/Shanghai"
TODAY = datetime.now(LOCAL).date()
ADMIN = User(username="admin", display_name="admin", role="admin", scope_level="province", scope_code="420000")
AREAS = [("421300", "421303"), ("421300", "421381"), ("420100", "420102")]


def _cubed(grain: str) -> list[str]:
    return [k for k, f in FIGURES.items() if (over := service.formula(f, grain)) is not None and cube_of(over)]


device_plan = st.tuples(
    st.sampled_from(["board", "recorder", "gateway"]),
    st.sampled_from([None, 40, 9, 3, 1]),  # installed that many days ago (None: unknown, so from registration)
    st.lists(st.tuples(st.integers(0, 8), st.integers(6, 21), st.integers(0, 50), st.booleans()),
             max_size=5),  # bursts: (days ago, local hour, minute, arrives late)
)
school_plan = st.tuples(st.integers(0, len(AREAS) - 1), st.lists(device_plan, min_size=1, max_size=3))


def _load(db, registry, schools: list) -> list[str]:
    for city, county in AREAS:
        registry.area(city=city, county=county, names=("湖北省", f"市{city}", f"县{county}"))
    late: list[tuple] = []
    devices = []
    for area, plan in schools:
        city, county = AREAS[area]
        school = registry.school(county=county, city=city, uplink_mbps=100)
        for kind, installed, bursts in plan:
            on = None if installed is None else TODAY - timedelta(days=installed)
            dev = registry.device(school, kind, installed_on=on)
            devices.append(dev)
            counter = 0
            for days_ago, hour, minute, is_late in bursts:
                start = datetime.combine(TODAY - timedelta(days=days_ago), time(hour, minute), LOCAL)
                if start > datetime.now(LOCAL) - timedelta(hours=1):
                    continue
                for m in range(0, 30, 3):
                    counter += 150
                    row = (dev, start + timedelta(minutes=m), counter)
                    if is_late:
                        late.append(row)
                    else:
                        _insert(db, kind, [row])
    refresh(db, TZ, margin="0 seconds")  # up to now: what arrives next is rolled up by the next refresh
    for dev, moment, counter in late:
        kind = db.execute("SELECT kind FROM device WHERE id = %s", (dev,)).fetchone()["kind"]
        _insert(db, kind, [(dev, moment, counter)])
    refresh(db, TZ, margin="0 seconds")
    return devices


def _insert(db, kind: str, rows: list[tuple]) -> None:
    for dev, moment, counter in rows:
        if kind == "board":
            db.execute("INSERT INTO board_telemetry (device_id, time, seq, power_on, screen_on, active_use_s) "
                       "VALUES (%s, %s, %s, true, true, %s) ON CONFLICT DO NOTHING",
                       (dev, moment, int(moment.timestamp()), counter))
        elif kind == "recorder":
            db.execute("INSERT INTO recorder_telemetry (device_id, time, seq, recording, streaming, cameras_total, "
                       "cameras_online, storage_free_gb, dropped_frames) VALUES (%s, %s, %s, true, %s, 2, 2, 100, 0) "
                       "ON CONFLICT DO NOTHING", (dev, moment, int(moment.timestamp()), counter % 300 == 0))
        else:
            db.execute("INSERT INTO gateway_telemetry (device_id, time, seq, rx_mbps, tx_mbps, uplink_mbps, latency_ms, "
                       "loss_pct, aps_total, aps_online, wifi_clients) VALUES (%s, %s, %s, 20, 5, 100, %s, 0.5, 4, 4, 30) "
                       "ON CONFLICT DO NOTHING", (dev, moment, int(moment.timestamp()), 10 + counter % 40))


def _compare(db, period_args: dict) -> None:
    period = parse_period(**period_args, tz=TZ)
    for level, code in [("province", "420000"), ("city", "421300"), ("city", "420100")]:
        scope = resolve(db, ADMIN, level, code)
        for grain, lessons in (("period", False), ("lessons", True)):
            keys = _cubed(grain)
            assert service.cube_level(db, level, grain) == level, "the totals are not used"
            cubed = service.compute(db, scope, ADMIN, keys, period=period, lessons=lessons)
            plain = service.compute(db, scope, ADMIN, keys, period=period, lessons=lessons, use_cube=False)
            for who_c, who_p in [(cubed.figures, plain.figures)] + [
                    (c.figures, p.figures) for c, p in zip(cubed.children, plain.children, strict=True)]:
                for k in keys:
                    a, b = who_c[k], who_p[k]
                    for field in ("value", "previous"):
                        assert getattr(a, field) == pytest.approx(getattr(b, field), abs=1e-9), (level, grain, k, a, b)
                    for field in ("num", "den", "previous_num", "previous_den"):
                        x, y = getattr(a, field), getattr(b, field)
                        assert (x is None) == (y is None) and (x is None or x == pytest.approx(y, rel=1e-9)), \
                            (level, grain, k, field, a, b)


PERIODS = [{"period": "yesterday"}, {"period": "this_week"}, {"period": "last_week"}, {"period": "this_month"},
           {"from_": TODAY - timedelta(days=5), "to": TODAY - timedelta(days=2)}]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(schools=st.lists(school_plan, min_size=1, max_size=6), period=st.sampled_from(PERIODS))
def test_the_county_totals_give_what_the_schools_give(db, registry, schools, period):
    db.execute("TRUNCATE device_all, school, county, city, province, board_telemetry, recorder_telemetry, "
               "gateway_telemetry, device_state, rollup_watermark, school_hourly, school_daily, county_daily_cum, "
               "county_cum_stale, counter_anomaly CASCADE")
    for table in ("device_hourly", "device_daily"):  # tables on plain PostgreSQL, views on TimescaleDB
        if db.execute("SELECT relkind = 'r' AS t FROM pg_class WHERE oid = %s::regclass", (table,)).fetchone()["t"]:
            db.execute(f"TRUNCATE {table}")
    _load(db, registry, schools)
    _compare(db, period)


def test_stale_totals_are_recounted_and_never_read(db, registry):
    schools = [(0, [("board", 40, [(2, 9, 0, False), (1, 10, 0, False)])]),
               (2, [("board", 40, [(2, 9, 30, False)]), ("gateway", 3, [(1, 8, 0, True)])])]
    _load(db, registry, schools)
    moved = db.execute("SELECT code FROM school WHERE county_code = '420102'").fetchone()["code"]
    db.execute("UPDATE school SET county_code = '421381', city_code = '421300' WHERE code = %s", (moved,))
    assert service.cube_level(db, "province", "period") is None  # stale: the schools' rows answer
    stale = {r["county_code"] for r in db.execute("SELECT county_code FROM county_cum_stale")}
    assert stale == {"420102", "421381"}
    with db.cursor() as cur:
        assert recount_counties(cur, TZ) == 2
    _compare(db, {"period": "this_week"})

    registry.calendar_day(TODAY - timedelta(days=2))  # a holiday declared: the lens changes from that day
    assert service.cube_level(db, "city", "lessons") is None
    refresh(db, TZ, margin="0 seconds")  # the service recounts on its round
    assert db.execute("SELECT count(*) AS n FROM county_cum_stale").fetchone()["n"] == 0
    service.forget_calendar()
    _compare(db, {"from_": TODAY - timedelta(days=4), "to": TODAY - timedelta(days=1)})


def test_every_period_template_with_a_twin_is_cubed():
    """The cube covers what the overview asks over a period: availability, use and recordings."""
    for key in ("online_rate", "board_online_rate", "use_hours_per_board_day", "recorded_hours_7d", "online"):
        assert key in _cubed("period")
    assert "network_poor_loss_share" not in _cubed("period")  # a share of schools needs each school
    assert set(_cubed("lessons")) == {k for k, f in FIGURES.items() if f.lessons}


def test_a_school_sits_in_its_countys_city(db, registry):
    """The counties' totals place a school by its county, the schools' rows by its own city: they may not differ."""
    for city, county in AREAS:
        registry.area(city=city, county=county, names=("湖北省", f"市{city}", f"县{county}"))
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        registry.school(county="421303", city="420100")
    school = registry.school(county="420102")
    assert db.execute("SELECT city_code FROM school WHERE code = %s", (school,)).fetchone()["city_code"] == "420100"


def test_registry_changes_after_the_rollups_reach_the_past(db, registry):
    """A device retired, brought back, removed, moved to another city's school, or found installed later than its readings: the
    schools' rollups are recomputed on the next round, and both paths say what the readings now mean."""
    for city, county in AREAS:
        registry.area(city=city, county=county, names=("湖北省", f"市{city}", f"县{county}"))
    here, there = registry.school(county="421303"), registry.school(county="420102")
    a, b = registry.device(here), registry.device(here)
    day = TODAY - timedelta(days=3)
    start = datetime.combine(day, time(9), LOCAL)
    for dev in (a, b):
        _insert(db, "board", [(dev, start + timedelta(minutes=m), 1000 + 60 * m) for m in range(60)])
    refresh(db, TZ, margin="0 seconds")
    period = {"from_": day, "to": day}

    def online(level: str, code: str) -> tuple:
        scope = resolve(db, ADMIN, level, code)
        got = [service.compute(db, scope, ADMIN, ["board_online_rate"], period=parse_period(**period, tz=TZ),
                               use_cube=cube).figures["board_online_rate"] for cube in (True, False)]
        assert (got[0].num, got[0].den) == (got[1].num, got[1].den), (level, code, got)
        return got[0].num, got[0].den

    assert online("province", "420000") == (120, 2 * 1440)
    db.execute("UPDATE device_all SET retired_at = now() WHERE id = %s", (b,))
    refresh(db, TZ, margin="0 seconds")
    assert online("province", "420000") == (60, 1440)  # a retired device leaves the figures, past ones too
    db.execute("UPDATE device_all SET retired_at = NULL WHERE id = %s", (b,))
    refresh(db, TZ, margin="0 seconds")
    assert online("province", "420000") == (120, 2 * 1440)  # and comes back with its history
    db.execute("DELETE FROM device WHERE id = %s", (b,))
    refresh(db, TZ, margin="0 seconds")
    assert online("province", "420000") == (60, 1440)  # B's readings left with B
    db.execute("UPDATE device SET school_code = %s WHERE id = %s", (there, a))
    refresh(db, TZ, margin="0 seconds")
    assert not online("city", "421300")[0] and online("city", "420100") == (60, 1440)  # its past went along
    db.execute("UPDATE device SET installed_on = %s WHERE id = %s", (TODAY + timedelta(days=1), a))
    refresh(db, TZ, margin="0 seconds")  # in service from its registration, now: that day's readings are no one's
    assert not online("province", "420000")[0]
    assert db.execute("SELECT count(*) AS n FROM school_rollup_stale").fetchone()["n"] == 0
