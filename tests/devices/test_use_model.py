"""The typical-use model a board's counter follows, in the simulated past and in the simulator."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.calendar import SchoolCalendar
from devices.behaviour import (
    UNIT_SQL,
    USE_CLASSES,
    USE_DAY_S,
    SimDevice,
    UseModel,
    habits,
    reading,
    unit,
)
from ops.seed.calendar import calendar_days, term_start

TZ = ZoneInfo("Asia/Shanghai")
CALENDAR = SchoolCalendar({day: school for day, school, _ in calendar_days()}, TZ)
BOARDS = [f"B24213030{s:02d}-{n:03d}" for s in range(1, 13) for n in range(1, 13)]


def test_unit_is_the_same_in_python_and_in_postgresql(db):
    parts = [("B4213030001-001", "propensity"), ("G4213030001", "2026-11-25", "outage-at"), ("x",)]
    query = f"SELECT {UNIT_SQL.format('%s')}::float8 AS u"  # noqa: S608
    for p in parts:
        assert db.execute(query, (":".join(p),)).fetchone()["u"] == pytest.approx(unit(*p), abs=1e-12)


def test_habits_are_fixed_by_the_id_and_fit_the_school_day():
    hs = [habits(b, "urban") for b in BOARDS]
    assert hs == [habits(b, "urban") for b in BOARDS]
    assert all(h.opens_minute < 8 * 60 and h.closes_minute > 17 * 60 for h in hs), "on before and after the lessons"
    assert all(h.propensity_milli == 0 or 50 <= h.propensity_milli <= 1000 for h in hs)
    assert len({h.use_class for h in hs}) > USE_CLASSES // 2
    rural = sum(habits(b, "rural").propensity_milli for b in BOARDS)
    assert rural < 0.7 * sum(h.propensity_milli for h in hs), "village schools use their boards less"


def test_a_counter_grows_in_lessons_on_school_days_only_and_never_faster_than_time():
    model = UseModel(CALENDAR)
    for board in BOARDS[:6]:
        h = habits(board, "town")
        start = datetime(2026, 9, 25, tzinfo=TZ)  # 中秋 Friday to Sunday, then two school days
        previous = model.counter(h, start)
        for minute in range(1, 5 * 1440):
            moment = start + timedelta(minutes=minute)
            value = model.counter(h, moment)
            assert 0 <= value - previous <= 60
            if value > previous:
                assert CALENDAR.lesson_period(moment - timedelta(minutes=1)) is not None
            previous = value


def test_a_day_of_use_is_what_its_full_use_and_propensity_say():
    model = UseModel(CALENDAR)
    h = habits(BOARDS[0], "urban")
    day = date(2026, 11, 19)
    start = model.counter(h, datetime.combine(day, datetime.min.time(), TZ))
    end = model.counter(h, datetime.combine(day + timedelta(days=1), datetime.min.time(), TZ))
    full = model.full_use(h.use_class, day)
    assert end - start == h.propensity_milli * (model.full_use_before(h.use_class, day) + full) // 1000 \
        - h.propensity_milli * model.full_use_before(h.use_class, day) // 1000
    assert 0.6 * USE_DAY_S < full <= USE_DAY_S
    assert model.full_use(h.use_class, date(2026, 11, 21)) == 0  # a Saturday
    # every hour with lesson time shows use for any used board (the daily active_hours rely on it)
    assert min(model.full_use(k, d) for k in range(USE_CLASSES)
               for d in (date(2026, 9, 1) + timedelta(days=i) for i in range(140)) if CALENDAR.is_school_day(d)) > 6200


def test_a_never_used_board_counts_nothing():
    never = next(h for b in (f"B{n:010d}-001" for n in range(1000)) if (h := habits(b, "urban")).propensity_milli == 0)
    model = UseModel(CALENDAR)
    assert model.counter(never, datetime(2026, 9, 1, tzinfo=TZ)) == model.counter(never, datetime(2026, 11, 30,
                                                                                                  tzinfo=TZ)) == 0


def test_a_resumed_counter_goes_on_from_the_stored_reading():
    model = UseModel(CALENDAR)
    dev = SimDevice.create(BOARDS[3], "board", "2421303001", "urban", 1000, [], 1)
    assert (dev.propensity, dev.opens_late_min) == (dev.habits.propensity, dev.habits.opens_late_min)
    stored_at = datetime(2026, 11, 25, 9, 3, tzinfo=TZ)
    stored = model.counter(dev.habits, stored_at) + 500  # the board was used more than typical
    start = datetime(2026, 11, 25, 10, 12, 30, tzinfo=TZ)
    dev.resume_use(model, start, (stored_at, stored))
    resumed = dev.active_use_s
    assert resumed == stored + model.counter(dev.habits, start) - model.counter(dev.habits, stored_at)
    assert 0 < resumed - stored <= (start - stored_at).total_seconds()
    dev.propensity = 1.0  # used in this lesson for sure
    first = reading(dev, start + timedelta(seconds=5), CALENDAR, 60)
    assert first.active_use_s - resumed == 5, "the first reading adds the time since the start, not an interval"
    assert reading(dev, start + timedelta(seconds=65), CALENDAR, 60).active_use_s - first.active_use_s == 60

    dev.resume_use(model, start, (start + timedelta(minutes=3), 999))  # its clock is behind the stored reading
    assert dev.active_use_s == 999 and dev.counter_at == start + timedelta(minutes=3)
    assert reading(dev, start + timedelta(minutes=1), CALENDAR, 60).active_use_s == 999  # nothing before it


@pytest.mark.parametrize(("day", "start"), [
    (date(2026, 11, 25), date(2026, 9, 1)), (date(2027, 1, 10), date(2026, 9, 1)),
    (date(2027, 3, 10), date(2027, 2, 22)), (date(2026, 8, 15), date(2026, 3, 2)),
    (date(2026, 2, 10), date(2025, 9, 1)), (date(2026, 9, 1), date(2026, 9, 1)),
])
def test_the_term_in_progress_began(day, start):
    assert term_start(day) == start


def test_the_model_reads_the_calendar_of_the_seed():
    model = UseModel(CALENDAR)
    national_day = datetime(2026, 10, 3, 10, tzinfo=TZ).astimezone(UTC)
    h = habits(BOARDS[0], "urban")
    assert model.counter(h, national_day) == model.counter(h, national_day + timedelta(days=3))
