"""The school calendar of the seeded province: public holidays, make-up days, vacations, terms."""

from collections.abc import Iterator
from datetime import date, timedelta

# The State Council's arrangement for 2026 (国办发明电, November 2025), as we know it:
# 元旦 1–3 Jan, 4 Jan (Sun) worked; 春节 15–23 Feb, 14 and 28 Feb (Sat) worked; 清明 4–6 Apr;
# 劳动节 1–5 May, 9 May (Sat) worked; 端午 19–21 Jun; 中秋 25–27 Sep; 国庆 1–7 Oct, 20 Sep
# (Sun) and 10 Oct (Sat) worked. 2027's arrangement is not published: we assume 元旦 1–3 Jan
# with no make-up day. Make-up days inside a vacation stay holidays for schools. Bureaus
# correct the table (calendar_day) if an assumption turns out wrong.
HOLIDAYS = [
    (date(2026, 1, 1), 3, "元旦"), (date(2026, 2, 15), 9, "春节"), (date(2026, 4, 4), 3, "清明节"),
    (date(2026, 5, 1), 5, "劳动节"), (date(2026, 6, 19), 3, "端午节"), (date(2026, 9, 25), 3, "中秋节"),
    (date(2026, 10, 1), 7, "国庆节"), (date(2027, 1, 1), 3, "元旦"),
]
MAKE_UP_DAYS = [
    (date(2026, 1, 4), "元旦调休上课"), (date(2026, 2, 14), "春节调休上课"), (date(2026, 2, 28), "春节调休上课"),
    (date(2026, 5, 9), "劳动节调休上课"), (date(2026, 9, 20), "国庆节调休上课"),
    (date(2026, 10, 10), "国庆节调休上课"),
]
# Hubei's primary and secondary schools (approximate; counties shift them by a few days).
VACATIONS = [
    (date(2026, 1, 31), date(2026, 3, 1), "寒假"),
    (date(2026, 7, 4), date(2026, 8, 31), "暑假"),
    (date(2027, 1, 23), date(2027, 2, 21), "寒假"),
]


def _span(start: date, end: date) -> Iterator[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


def calendar_days() -> list[tuple[date, bool, str]]:
    """(day, is_school_day, name) for every day that differs from the Monday–Friday rule."""
    days: dict[date, tuple[bool, str]] = {}
    for start, end, name in VACATIONS:
        for day in _span(start, end):
            days[day] = (False, name)
    for start, length, name in HOLIDAYS:
        for day in _span(start, start + timedelta(days=length - 1)):
            days[day] = (False, name)
    for day, name in MAKE_UP_DAYS:
        if day not in days:
            days[day] = (True, name)
    return [(day, school, name) for day, (school, name) in sorted(days.items())]


def autumn_term(school_year: int) -> tuple[date, date]:
    """First and last day of the autumn term: 1 September to the Friday before 23 January."""
    last = date(school_year + 1, 1, 22)
    return date(school_year, 9, 1), last - timedelta(days=(last.isoweekday() - 5) % 7)


def term_start(day: date) -> date:
    """The first day of the term `day` is in, or of the last one begun before it (a vacation belongs
    to the term before it): the autumn term's (autumn_term), or the spring term's, the day after
    the winter vacation (1 March where that vacation is not in VACATIONS)."""
    autumn = autumn_term(day.year)[0]
    if day >= autumn:
        return autumn
    spring = next((end + timedelta(days=1) for _start, end, name in VACATIONS
                   if name == "寒假" and end.year == day.year), date(day.year, 3, 1))
    return spring if day >= spring else autumn_term(day.year - 1)[0]
