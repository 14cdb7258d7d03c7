"""The school calendar of the seeded province: public holidays, make-up days, vacations."""

from datetime import date, timedelta

# The State Council's 2026 arrangement as published in late 2025 (元旦 1–3 Jan; 春节
# 15–23 Feb with 14 and 28 Feb worked; 清明 4–6 Apr; 劳动节 1–5 May with 9 May worked;
# 端午 19–21 Jun; 中秋 25–27 Sep; 国庆 1–7 Oct with 20 Sep and 10 Oct worked). Where a
# date is uncertain the cockpit's figures shift by a day at most; bureaus edit calendar_day.
HOLIDAYS = [
    (date(2026, 1, 1), 3, "元旦"), (date(2026, 2, 15), 9, "春节"), (date(2026, 4, 4), 3, "清明节"),
    (date(2026, 5, 1), 5, "劳动节"), (date(2026, 6, 19), 3, "端午节"), (date(2026, 9, 25), 3, "中秋节"),
    (date(2026, 10, 1), 7, "国庆节"), (date(2027, 1, 1), 3, "元旦"),
]
MAKE_UP_DAYS = [(date(2026, 5, 9), "劳动节调休上课"), (date(2026, 9, 20), "国庆节调休上课"),
                (date(2026, 10, 10), "国庆节调休上课")]
VACATIONS = [(date(2026, 1, 24), date(2026, 2, 28), "寒假"), (date(2026, 7, 4), date(2026, 8, 31), "暑假"),
             (date(2027, 1, 23), date(2027, 2, 21), "寒假")]


def _span(start: date, end: date):
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
