"""The period vocabulary: days, instants and the previous period of each, at the awkward edges."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.calendar import SchoolCalendar
from core.period import MAX_DAYS, PERIODS, Period, PeriodError, parse_period, term_start

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(local: str) -> datetime:
    """A moment written in Shanghai time, as UTC."""
    return datetime.fromisoformat(local).replace(tzinfo=SHANGHAI).astimezone(UTC)


def ask(period=None, from_=None, to=None, *, now: str = "2024-03-15 10:00", calendar=None) -> Period:
    return parse_period(period, from_, to, now=at(now), tz=SHANGHAI, calendar=calendar)


def days(p: Period | None) -> tuple[date, date]:
    assert p is not None
    return p.first, p.last


def d(text: str) -> date:
    return date.fromisoformat(text)


def test_now_is_the_instant_asked_and_has_no_previous():
    p = ask()
    assert p.is_now and p.label == "now" and p.previous is None and p.running
    assert p.start == p.end == p.until == at("2024-03-15 10:00")
    assert days(p) == (d("2024-03-15"), d("2024-03-15"))
    assert ask("now") == p


def test_today_runs_from_local_midnight_and_is_compared_with_yesterday():
    p = ask("today", now="2024-03-15 10:00")
    assert days(p) == (d("2024-03-15"), d("2024-03-15")) and p.running
    assert p.start == datetime(2024, 3, 14, 16, 0, tzinfo=UTC)  # 00:00 in Shanghai is 16:00 UTC the day before
    assert p.end == datetime(2024, 3, 15, 16, 0, tzinfo=UTC)
    assert p.until == at("2024-03-15 10:00") and p.minutes() == 600
    assert p.previous.label == "yesterday" and days(p.previous) == (d("2024-03-14"), d("2024-03-14"))
    assert not p.previous.running and p.previous.until == p.previous.end == p.start


def test_the_local_day_decides_not_the_utc_one():
    # 00:30 on the 16th in Shanghai is still the 15th in UTC
    p = ask("today", now="2024-03-16 00:30")
    assert days(p) == (d("2024-03-16"), d("2024-03-16")) and p.minutes() == 30
    y = ask("yesterday", now="2024-03-16 00:30")
    assert days(y) == (d("2024-03-15"), d("2024-03-15")) and not y.running and y.until == y.end
    assert y.previous.label == "previous" and days(y.previous) == (d("2024-03-14"), d("2024-03-14"))


@pytest.mark.parametrize(("now", "monday"), [("2024-03-11 08:00", "2024-03-11"),   # a Monday
                                             ("2024-03-17 23:59", "2024-03-11"),   # its Sunday
                                             ("2024-03-18 00:00", "2024-03-18")])  # the next Monday
def test_weeks_run_monday_to_sunday(now, monday):
    p = ask("this_week", now=now)
    assert days(p) == (d(monday), d(monday) + timedelta(days=6)) and p.running
    assert p.previous.label == "last_week" and days(p.previous) == (d(monday) - timedelta(days=7),
                                                                     d(monday) - timedelta(days=1))
    last = ask("last_week", now=now)
    assert days(last) == days(p.previous) and not last.running
    assert days(last.previous) == (d(monday) - timedelta(days=14), d(monday) - timedelta(days=8))


def test_a_week_across_new_year():
    p = ask("this_week", now="2025-01-01 09:00")  # a Wednesday
    assert days(p) == (d("2024-12-30"), d("2025-01-05"))
    assert days(p.previous) == (d("2024-12-23"), d("2024-12-29"))


@pytest.mark.parametrize(("now", "this", "last", "before"), [
    ("2024-01-31 12:00", ("2024-01-01", "2024-01-31"), ("2023-12-01", "2023-12-31"), ("2023-11-01", "2023-11-30")),
    ("2024-01-01 00:00", ("2024-01-01", "2024-01-31"), ("2023-12-01", "2023-12-31"), ("2023-11-01", "2023-11-30")),
    ("2024-02-29 18:00", ("2024-02-01", "2024-02-29"), ("2024-01-01", "2024-01-31"), ("2023-12-01", "2023-12-31")),
    ("2024-03-01 08:00", ("2024-03-01", "2024-03-31"), ("2024-02-01", "2024-02-29"), ("2024-01-01", "2024-01-31")),
    ("2023-03-31 23:59", ("2023-03-01", "2023-03-31"), ("2023-02-01", "2023-02-28"), ("2023-01-01", "2023-01-31")),
])
def test_months_end_on_their_last_day_leap_years_included(now, this, last, before):
    p = ask("this_month", now=now)
    assert days(p) == (d(this[0]), d(this[1])) and p.running
    assert p.previous.label == "last_month" and days(p.previous) == (d(last[0]), d(last[1]))
    lm = ask("last_month", now=now)
    assert days(lm) == (d(last[0]), d(last[1])) and not lm.running and lm.days == (d(last[1]) - d(last[0])).days + 1
    assert days(lm.previous) == (d(before[0]), d(before[1]))


def test_new_years_day_and_the_leap_day():
    p = ask("yesterday", now="2024-01-01 08:00")
    assert days(p) == (d("2023-12-31"), d("2023-12-31"))
    assert days(ask("yesterday", now="2024-03-01 08:00")) == (d("2024-02-29"), d("2024-02-29"))
    assert days(ask("today", now="2024-02-29 08:00").previous) == (d("2024-02-28"), d("2024-02-28"))


def test_days_are_24_hours_in_a_zone_without_daylight_saving():
    p = ask("last_month", now="2024-04-10 10:00")  # March: Europe changed its clocks, Shanghai did not
    assert p.end - p.start == timedelta(days=31) and p.minutes() == 31 * 1440
    assert p.start == datetime(2024, 2, 29, 16, tzinfo=UTC)


def test_a_zone_with_daylight_saving_gets_its_own_midnights():
    berlin = ZoneInfo("Europe/Berlin")
    p = parse_period("yesterday", now=datetime(2024, 4, 1, 10, tzinfo=UTC), tz=berlin)
    assert days(p) == (d("2024-03-31"), d("2024-03-31"))
    assert p.end - p.start == timedelta(hours=23)  # the day the clocks went forward
    assert p.zone == "Europe/Berlin"


def test_a_custom_range_is_compared_with_as_many_days_just_before():
    p = ask(from_="2024-02-01", to="2024-02-29")
    assert p.label == "custom" and days(p) == (d("2024-02-01"), d("2024-02-29")) and p.days == 29
    assert p.previous.label == "previous" and days(p.previous) == (d("2024-01-03"), d("2024-01-31"))
    assert not p.running and p.until == p.end
    one = ask(from_=date(2024, 3, 1), to=date(2024, 3, 1))
    assert days(one.previous) == (d("2024-02-29"), d("2024-02-29"))


def test_a_custom_range_up_to_today_is_running_and_to_defaults_to_today():
    p = ask(from_="2024-03-01", now="2024-03-15 10:00")
    assert days(p) == (d("2024-03-01"), d("2024-03-15")) and p.running and p.until == at("2024-03-15 10:00")
    assert days(p.previous) == (d("2024-02-15"), d("2024-02-29"))
    longest = ask(from_=d("2024-03-15") - timedelta(days=MAX_DAYS - 1), to="2024-03-15")
    assert longest.days == MAX_DAYS


@pytest.mark.parametrize(("args", "reason"), [
    (("last_year", None, None), "unknown period 'last_year'"),
    (("", None, None), "unknown period ''"),
    (("today", "2024-03-01", None), "either period or from/to"),
    ((None, None, "2024-03-01"), "to needs a from"),
    ((None, "2024-03-10", "2024-03-01"), "must not be after to"),
    ((None, "2024-03-10", "2024-03-16"), "to (2024-03-16) must not be after today (2024-03-15 in Asia/Shanghai)"),
    ((None, "2024-03-16", None), "from (2024-03-16) must not be after today (2024-03-15"),
    ((None, "2023-01-01", "2024-03-01"), "at most 400"),
    ((None, "2024-02-30", None), "from must be a date"),
    ((None, "yesterday", None), "from must be a date"),
    ((None, "2024-03-01", "03/05/2024"), "to must be a date"),
    ((None, "1899-12-31", "1900-01-01"), "on or after 1900-01-01"),
])
def test_what_cannot_be_answered_says_why(args, reason):
    with pytest.raises(PeriodError) as caught:
        ask(*args)
    assert reason in str(caught.value)


def test_every_name_of_the_vocabulary_parses():
    for name in PERIODS:
        p = ask(name)
        assert p.label == name and p.first <= p.last and p.start <= p.until <= p.end
        assert (p.previous is None) == (name == "now")
        if p.previous:
            assert p.previous.last < p.first and p.previous.end == p.start or name == "this_term"


# -- the term --------------------------------------------------------------------------------------------

def _holidays(*spans: tuple[str, str]) -> SchoolCalendar:
    days: dict[date, bool] = {}
    for first, last in spans:
        day = d(first)
        while day <= d(last):
            days[day] = False
            day += timedelta(days=1)
    return SchoolCalendar(days, SHANGHAI)


# Hubei 2025–26 as the seed has it: summer to 31 August, National Day week, winter 31 Jan – 1 Mar.
HUBEI = _holidays(("2025-07-05", "2025-08-31"), ("2025-10-01", "2025-10-08"), ("2026-01-31", "2026-03-01"),
                  ("2026-07-04", "2026-08-31"))


def test_the_term_begins_after_the_last_long_break():
    p = ask("this_term", now="2026-05-10 09:00", calendar=HUBEI)
    assert days(p) == (d("2026-03-02"), d("2026-05-10")) and p.running  # 2 March: the Monday after the break
    assert p.previous.label == "last_term" and days(p.previous) == (d("2025-09-01"), d("2026-03-01"))
    assert not p.previous.running


def test_a_holiday_week_does_not_start_a_term_and_a_vacation_belongs_to_the_term_before():
    autumn = ask("this_term", now="2025-11-03 09:00", calendar=HUBEI)  # after National Day: still the autumn term
    assert autumn.first == d("2025-09-01")
    summer = ask("this_term", now="2026-08-01 09:00", calendar=HUBEI)  # in the summer vacation
    assert days(summer) == (d("2026-03-02"), d("2026-08-01"))
    first_day = ask("this_term", now="2026-03-02 07:00", calendar=HUBEI)
    assert days(first_day) == (d("2026-03-02"), d("2026-03-02"))


def test_without_vacations_in_the_calendar_the_term_falls_back_to_its_fixed_dates():
    assert term_start(SchoolCalendar({}, SHANGHAI), d("2026-05-10")) == d("2026-03-01")
    assert term_start(SchoolCalendar({}, SHANGHAI), d("2026-02-10")) == d("2025-09-01")
    assert term_start(SchoolCalendar({}, SHANGHAI), d("2025-09-01")) == d("2025-09-01")
    p = ask("this_term", now="2026-05-10 09:00")
    assert days(p) == (d("2026-03-01"), d("2026-05-10"))
    assert days(p.previous) == (d("2025-09-01"), d("2026-02-28"))
