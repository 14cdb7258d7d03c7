"""One vocabulary for the time a figure is asked about: `period=` or `from=`/`to=`, in the schools' time zone.

A period is a run of whole local days, `first` to `last` (inclusive), in the schools' time
zone (COCKPIT_TIMEZONE, `core.settings.school_zone()`). Its instants are local midnights in
UTC: `start` is the midnight that begins `first`, `end` the one that ends `last`. A period
that contains today is *running*: its figures run up to `until`, the moment asked (never
past `end`); a finished period's `until` is its `end`.

| period | first … last | previous |
| --- | --- | --- |
| `now` | the instant asked (today … today; start = end = until = now) | none |
| `today` | today (running) | yesterday |
| `yesterday` | yesterday | the day before |
| `this_week` | Monday … Sunday of this ISO week (running) | last week |
| `last_week` | Monday … Sunday of the week before | the week before that |
| `this_month` | the 1st … the last day of this month (running) | last month |
| `last_month` | the 1st … the last day of last month | the month before |
| `this_term` | the first day of the current term … today (running) | the previous term, whole |
| `from`/`to` | those days (≤ `MAX_DAYS` days, `to` not after today) | as many days just before `from` |

The previous period is whole even when the period is still running: "this month" is
compared with all of last month.

**The term.** The schema has no term table; the calendar (`calendar_day`: holidays,
vacations, make-up days, on top of Monday–Friday) places it. A term begins on the first
school day after a run of at least `TERM_BREAK_DAYS` (14) consecutive non-school days (a
vacation; weekends and public holidays never make one that long) and lasts until the
next term begins, so the vacation after a term belongs to it. `this_term` is the latest
term begun on or before today; `last_term` the one before it, up to the day before
`this_term` began. Where the calendar holds no such break in the `TERM_SEARCH_DAYS`
(240) days up to a day, the term falls back to the national convention: it began on
1 September or 1 March, whichever came last (as ops/seed/calendar.py assumes without data).

Invalid input raises `PeriodError`, whose message says why (the API answers it with 422).
"""

from __future__ import annotations

import calendar as _months
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo

from core.calendar import SchoolCalendar
from core.settings import school_zone

PeriodName = Literal["now", "today", "yesterday", "this_week", "last_week", "this_month", "last_month",
                     "this_term"]
PERIODS: tuple[str, ...] = get_args(PeriodName)
MAX_DAYS = 400  # the longest from/to range
TERM_BREAK_DAYS = 14  # consecutive non-school days that separate two terms
TERM_SEARCH_DAYS = 240  # how far back a term's start is looked for before the fixed-date fallback
EARLIEST = date(1900, 1, 1)  # no period begins before this day (so the previous one stays in range)


class PeriodError(ValueError):
    """The period asked for is not one the platform can answer; the message says why."""


@dataclass(frozen=True)
class Period:
    """Whole local days `first`…`last`, their UTC instants, and the period just before them."""

    label: str  # a name of PERIODS, "custom" for from/to, or the name of a previous period ("last_term", "previous")
    first: date
    last: date
    start: datetime  # UTC: local midnight beginning `first` (for now: the instant asked)
    end: datetime  # UTC: local midnight ending `last`, exclusive (for now: the instant asked)
    until: datetime  # UTC: what the figures run up to: `end`, or the instant asked while running
    running: bool  # today is one of its days
    zone: str  # the IANA time zone its days are days of
    previous: Period | None = field(default=None, compare=False)

    @property
    def is_now(self) -> bool:
        """True for the instant `now`: figures keep their current-state definitions."""
        return self.label == "now"

    @property
    def days(self) -> int:
        """How many days it spans, `first` to `last` inclusive."""
        return (self.last - self.first).days + 1

    @property
    def elapsed_last(self) -> date:
        """The last day that has begun: `last`, or today while running."""
        return min(self.last, self.until.astimezone(ZoneInfo(self.zone)).date()) if self.running else self.last

    def minutes(self) -> float:
        """Minutes from `start` to `until` (the elapsed part of a running period)."""
        return max(0.0, (self.until - self.start).total_seconds() / 60.0)

    def clipped(self, until: datetime) -> Period:
        """The same period with its figures running up to an earlier moment (never before `start`)."""
        return replace(self, until=max(self.start, min(self.until, until)))

    def dates(self, upto: date | None = None) -> list[date]:
        """Its days in order, up to `upto` (inclusive) if given."""
        last = min(self.last, upto) if upto else self.last
        return [self.first + timedelta(days=i) for i in range((last - self.first).days + 1)]


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tz).astimezone(UTC)


def span(label: str, first: date, last: date, now: datetime, tz: ZoneInfo,
         previous: Period | None = None) -> Period:
    """The period of days `first`…`last` as seen at `now` (running when today is one of them)."""
    start, end = _midnight(first, tz), _midnight(last + timedelta(days=1), tz)
    today = now.astimezone(tz).date()
    running = first <= today <= last
    until = max(start, min(end, now)) if running else end
    return Period(label, first, last, start, end, until, running, tz.key, previous)


def month_of(day: date) -> tuple[date, date]:
    """The first and the last day of the month of `day`."""
    return day.replace(day=1), day.replace(day=_months.monthrange(day.year, day.month)[1])


def week_of(day: date) -> tuple[date, date]:
    """Monday and Sunday of the ISO week of `day`."""
    monday = day - timedelta(days=day.isoweekday() - 1)
    return monday, monday + timedelta(days=6)


def _fixed_term_start(day: date) -> date:
    """1 September or 1 March, whichever came last on or before `day`."""
    if day >= date(day.year, 9, 1):
        return date(day.year, 9, 1)
    if day >= date(day.year, 3, 1):
        return date(day.year, 3, 1)
    return date(day.year - 1, 9, 1)


def term_start(cal: SchoolCalendar, day: date) -> date:
    """The first day of the term `day` lies in (see the module's docstring for the rule)."""
    first = day - timedelta(days=TERM_SEARCH_DAYS)
    run, found = 0, None
    for i in range((day - first).days + 1):
        d = first + timedelta(days=i)
        if cal.is_school_day(d):
            if run >= TERM_BREAK_DAYS:
                found = d
            run = 0
        else:
            run += 1
    return found or _fixed_term_start(day)


def _previous(p: Period, now: datetime, tz: ZoneInfo, cal: SchoolCalendar | None) -> Period:
    """The period of the same kind just before `p` (whole, never running)."""
    if p.label in ("today", "yesterday"):
        day = p.first - timedelta(days=1)
        return span("yesterday" if p.label == "today" else "previous", day, day, now, tz)
    if p.label in ("this_week", "last_week"):
        first, last = week_of(p.first - timedelta(days=7))
        return span("last_week" if p.label == "this_week" else "previous", first, last, now, tz)
    if p.label in ("this_month", "last_month"):
        first, last = month_of(p.first - timedelta(days=1))
        return span("last_month" if p.label == "this_month" else "previous", first, last, now, tz)
    if p.label == "this_term":
        last = p.first - timedelta(days=1)
        return span("last_term", term_start(cal or SchoolCalendar({}, tz), last), last, now, tz)
    last = p.first - timedelta(days=1)
    return span("previous", last - timedelta(days=p.days - 1), last, now, tz)


def _day(value: date | str | None, name: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise PeriodError(f"{name} must be a date written YYYY-MM-DD, not {str(value)[:40]!r}") from None


def parse_period(period: str | None = None, from_: date | str | None = None, to: date | str | None = None, *,
                 now: datetime | None = None, tz: ZoneInfo | str | None = None,
                 calendar: SchoolCalendar | None = None) -> Period:
    """The period named by `period`, or by the days `from_`…`to` (`to` defaults to today); `now` when neither.

    Days are days in `tz` (by default the schools' zone); `calendar` places the term (without
    one only weekends are non-school days, so the term falls back to its fixed dates).
    Raises PeriodError with the reason for anything it cannot answer.
    """
    zone = tz if isinstance(tz, ZoneInfo) else school_zone(tz)
    now = (now or datetime.now(UTC)).astimezone(UTC)
    today = now.astimezone(zone).date()
    first, last = _day(from_, "from"), _day(to, "to")
    if period is not None and (first or last):
        raise PeriodError("give either period or from/to, not both")
    if first is None and last is not None:
        raise PeriodError("to needs a from")
    if first is not None:
        return _custom(first, last or today, today, now, zone)
    name = "now" if period is None else period
    if name not in PERIODS:
        raise PeriodError(f"unknown period {str(name)[:40]!r}: use one of {', '.join(PERIODS)}, or from/to")
    if name == "now":
        return Period("now", today, today, now, now, now, True, zone.key)
    if name in ("today", "yesterday"):
        day = today - timedelta(days=0 if name == "today" else 1)
        first, last = day, day
    elif name in ("this_week", "last_week"):
        first, last = week_of(today - timedelta(days=0 if name == "this_week" else 7))
    elif name in ("this_month", "last_month"):
        first, last = month_of(today if name == "this_month" else today.replace(day=1) - timedelta(days=1))
    else:
        first, last = term_start(calendar or SchoolCalendar({}, zone), today), today
    p = span(name, first, last, now, zone)
    return replace(p, previous=_previous(p, now, zone, calendar))


def _custom(first: date, last: date, today: date, now: datetime, zone: ZoneInfo) -> Period:
    if first < EARLIEST:
        raise PeriodError(f"from must be on or after {EARLIEST.isoformat()}")
    for name, day in (("from", first), ("to", last)):
        if day > today:
            raise PeriodError(f"{name} ({day.isoformat()}) must not be after today ({today.isoformat()} in {zone.key})")
    if first > last:
        raise PeriodError(f"from ({first.isoformat()}) must not be after to ({last.isoformat()})")
    if (last - first).days + 1 > MAX_DAYS:
        raise PeriodError(f"from/to spans {(last - first).days + 1} days; a period spans at most {MAX_DAYS}")
    p = span("custom", first, last, now, zone)
    return replace(p, previous=_previous(p, now, zone, None))
