"""The school day: lesson periods, school days, and what counts as school hours.

Nights, weekends and holidays are not faults; everything that judges a device by the
hour asks this module. Holidays and make-up days come from the `calendar_day` table.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from core.settings import school_zone

# The usual periods of a Chinese primary/junior school day (40-minute lessons).
LESSON_PERIODS: tuple[tuple[time, time], ...] = (
    (time(8, 0), time(8, 40)),
    (time(8, 50), time(9, 30)),
    (time(10, 0), time(10, 40)),
    (time(10, 50), time(11, 30)),
    (time(14, 0), time(14, 40)),
    (time(14, 50), time(15, 30)),
    (time(15, 40), time(16, 20)),
    (time(16, 30), time(17, 10)),
)
# The lesson-hours lens: the local hours any lesson period overlaps (rollups keep per-day sums over
# these hours; figures asked with hours=lessons read them). 8–11 and 14–17 with the periods above.
LESSON_HOURS: tuple[int, ...] = tuple(sorted({h for start, end in LESSON_PERIODS
                                              for h in range(start.hour, (end.hour * 60 + end.minute - 1) // 60 + 1)}))
SCHOOL_OPENS = time(7, 30)
SCHOOL_CLOSES = time(17, 30)


@dataclass(frozen=True)
class SchoolCalendar:
    """Which dates are school days, from weekdays plus the calendar_day exceptions."""

    exceptions: dict[date, bool]
    tz: ZoneInfo = field(default_factory=school_zone)

    def is_school_day(self, day: date) -> bool:
        """True on a weekday that is not a holiday, or on a make-up weekend day."""
        if day in self.exceptions:
            return self.exceptions[day]
        return day.isoweekday() <= 5

    def local(self, moment: datetime) -> datetime:
        """The moment in the schools' local time."""
        return moment.astimezone(self.tz)

    def in_school_hours(self, moment: datetime) -> bool:
        """True between opening and closing on a school day."""
        t = self.local(moment)
        return self.is_school_day(t.date()) and SCHOOL_OPENS <= t.time() < SCHOOL_CLOSES

    def lesson_period(self, moment: datetime) -> int | None:
        """The index of the lesson period in progress on a school day, or None."""
        t = self.local(moment)
        if not self.is_school_day(t.date()):
            return None
        for i, (start, end) in enumerate(LESSON_PERIODS):
            if start <= t.time() < end:
                return i
        return None


def load_calendar(conn, tz: str | None = None) -> SchoolCalendar:
    """The school calendar as stored in the database, in `tz` (by default COCKPIT_TIMEZONE)."""
    rows = conn.execute("SELECT day, is_school_day FROM calendar_day").fetchall()
    return SchoolCalendar({r["day"]: r["is_school_day"] for r in rows}, school_zone(tz))
