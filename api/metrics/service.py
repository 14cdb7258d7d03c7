"""Compute figures for a scope and its children, rank children, and follow a figure over time."""

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from psycopg import Connection, sql

from api.auth.models import User
from api.metrics.catalogue import CUBES, FIGURES, Figure, Over, cube_of, uses_now
from api.metrics.models import ChildFigures, Figures, FigureValue, RankedChild, period_info
from api.metrics.settings import metrics_settings
from api.scopes.access import bounded
from api.scopes.models import Scope
from api.scopes.service import children
from core.calendar import LESSON_HOURS, SchoolCalendar, load_calendar
from core.period import Period
from core.scope import child_key
from core.settings import platform_settings
from rollups.school_now import ensure_fresh

_calendar: dict = {}  # the calendar as last read, with its fingerprint
# A fingerprint of calendar_day (a few hundred rows): any edit changes it, so a figure never judges
# school days by a calendar older than the one the rollups' lesson totals were summed by.
_FINGERPRINT = "SELECT count(*) AS n, coalesce(sum(hashtext(day::text || is_school_day::text)), 0) AS h FROM calendar_day"


def school_calendar(conn: Connection) -> SchoolCalendar:
    """The school calendar, read again whenever calendar_day has changed."""
    row = conn.execute(_FINGERPRINT).fetchone()
    mark = (row["n"], row["h"]) if isinstance(row, dict) else tuple(row)
    if _calendar.get("mark") != mark:
        _calendar.update(mark=mark, calendar=load_calendar(conn, platform_settings().timezone))
    return _calendar["calendar"]


def forget_calendar() -> None:
    """Drop the kept calendar: the next figure reads calendar_day again (after an edit, or a test's)."""
    _calendar.clear()


def window_params(conn: Connection, now: datetime) -> dict:
    """The time windows figures are computed over, as query parameters."""
    settings = metrics_settings()
    cal = school_calendar(conn)
    today = cal.local(now).date()
    since = today - timedelta(days=settings.use_window_days - 1)
    school_days = sum(cal.is_school_day(since + timedelta(days=i)) for i in range(settings.use_window_days))
    midnight = lambda d: datetime.combine(d, time(), cal.tz)  # noqa: E731 - local midnight as an aware time
    return {
        "today": midnight(today), "since": midnight(since), "since_week": midnight(today - timedelta(days=6)),
        "school_days": school_days, "silent_hours": settings.silent_hours, "poor_loss_pct": settings.poor_loss_pct,
    }


def _value(f: Figure, num: float | None, den: float | None) -> float | None:
    if f.aggregation == "ratio":
        return round(float(num) / float(den), 4) if num is not None and den else None
    return None if num is None else round(float(num), 4)


def combine(f: Figure, rows: list[tuple[float | None, float | None]]) -> FigureValue:
    nums = [n for n, _ in rows if n is not None]
    if f.aggregation == "max":
        num = max(nums) if nums else None
        return FigureValue(value=_value(f, num, None), num=num, den=None)
    num = sum(nums) if nums else None
    den = sum(d for _, d in rows if d is not None) if f.aggregation == "ratio" else None
    return FigureValue(value=_value(f, num, den), num=num, den=den)


def _query(f_group: list[Figure | Over], child: sql.Composable, where: sql.Composable, keys: list[str],
           extra: str = "") -> sql.Composed:
    columns = sql.SQL(", ").join(
        sql.SQL("({}) AS {}, ({}) AS {}").format(sql.SQL(f.num), sql.Identifier(f"num_{key}"),
                                                 sql.SQL(f.den), sql.Identifier(f"den_{key}"))
        for f, key in zip(f_group, keys, strict=True))
    return sql.SQL(f_group[0].template).format(child=child, columns=columns, where=where, extra=sql.SQL(extra))


Grain = Literal["now", "period", "lessons"]


def formula(f: Figure, grain: Grain) -> Figure | Over:
    """The figure's formula for "now", over a period, or over a period's lesson hours."""
    return {"now": f, "period": f.over, "lessons": f.lessons}[grain]


# A province's or a city's children over the counties' running totals (sql/023_county_cube.sql):
# the child key and the scope's predicate on the county table. A user who may see a province or a
# city sees all of it (api/scopes/access.py resolve), so their own bound adds nothing there.
_CUBE_SCOPES = {"province": (sql.SQL("c.city_code"), sql.SQL("c.province_code = %(scope_code)s")),
                "city": (sql.SQL("c.code"), sql.SQL("c.city_code = %(scope_code)s"))}
_STALE = "SELECT EXISTS (SELECT 1 FROM county_cum_stale) AS stale"


def cube_level(conn: Connection, level: str, grain: Grain) -> str | None:
    """The scope level, when its period figures can be read from the county totals (none are stale)."""
    if grain == "now" or level not in _CUBE_SCOPES:
        return None
    row = conn.execute(_STALE).fetchone()
    return None if (row["stale"] if isinstance(row, dict) else row[0]) else level


def rows_by_child(conn: Connection, keys: list[str], child: sql.Composable, where: sql.Composable, params: dict,
                   grain: Grain, cube: str | None = None) -> dict[str, dict[str, tuple]]:
    """(numerator, denominator) of each figure per child: one query per template (and filter); with `cube`
    (a level of cube_level) the figures that have a county twin read the county totals instead."""
    groups: dict[tuple[str, str], list[Figure]] = defaultdict(list)
    for key in keys:
        f = FIGURES[key]
        if grain == "now":
            groups[(f.template, f.extra)].append(f)
        else:
            over = formula(f, grain)
            groups[((cube and cube_of(over)) or over.template, "")].append(f)
    rows: dict[str, dict[str, tuple]] = defaultdict(dict)
    for (template, extra), group in groups.items():
        formulas = [formula(f, grain) for f in group]
        if cube and template in CUBES.values():
            formulas = [Over(template, o.num, o.den, o.meaning) for o in formulas]
            query = _query(formulas, *_CUBE_SCOPES[cube], [f.key for f in group], extra)
        else:
            query = _query(formulas, child, where, [f.key for f in group], extra)
        for row in conn.execute(query, params):
            for f in group:
                rows[row["child"]][f.key] = (row[f"num_{f.key}"], row[f"den_{f.key}"])
    return rows


def of_child(rows: dict[str, dict[str, tuple]], code: str | None, key: str) -> list[tuple]:
    """The rows of one child (or of every child, for the scope itself) for one figure."""
    if code is None:
        return [r[key] for r in rows.values() if key in r]
    return [rows[code][key]] if key in rows.get(code, {}) else []


class LensError(ValueError):
    """The lesson-hours lens was asked where it has no meaning; the message says why."""


def check_lens(keys: list[str], period: Period | None) -> None:
    """Raise LensError unless every figure has a lesson-hours formula and a period is asked."""
    if period is None or period.is_now:
        raise LensError("the lesson-hours lens (hours=lessons) needs a period: give period= or from=/to=")
    without = [k for k in keys if FIGURES[k].lessons is None]
    if without:
        raise LensError(f"no lesson-hours lens for {', '.join(without)}; it exists for: "
                        f"{', '.join(k for k, f in FIGURES.items() if f.lessons)}")


def compute(conn: Connection, scope: Scope, user: User, keys: list[str], now: datetime | None = None,
            period: Period | None = None, lessons: bool = False, use_cube: bool = True) -> Figures:
    """The figures for the scope and each child the user may see: now, or over a period (with the previous
    one), or over the lesson hours of a period (`lessons`; check_lens says whether that can be asked)."""
    if lessons:
        check_lens(keys, period)
    if period is not None and not period.is_now:
        return _compute_over(conn, scope, user, keys, period, "lessons" if lessons else "period", use_cube)
    now = now or datetime.now(UTC)
    if uses_now([FIGURES[k] for k in keys]):
        now = ensure_fresh(conn, metrics_settings().now_max_age_s) or now
    where, params = bounded(scope.level, user=user)
    params |= {"scope_code": scope.code} | window_params(conn, now)
    rows = rows_by_child(conn, keys, child_key(scope.level), where, params, "now")
    kids = children(conn, scope, user)
    child_figures = [ChildFigures(**c.model_dump(), figures={k: combine(FIGURES[k], of_child(rows, c.code, k))
                                                             for k in keys}) for c in kids]
    totals = {k: combine(FIGURES[k], of_child(rows, None, k)) for k in keys}
    return Figures(scope=scope, as_of=now, figures=totals, children=child_figures)


_ROLLED_UP = "SELECT received_upto FROM rollup_watermark WHERE name = 'telemetry'"


def rolled_up(conn: Connection, period: Period) -> Period:
    """A running period up to the moment the rollups have reached (what its figures can know of)."""
    if not period.running:
        return period
    row = conn.execute(_ROLLED_UP).fetchone()
    return period.clipped(row["received_upto"]) if row else period


def period_params(conn: Connection, period: Period) -> dict:
    """The `over` and `lessons` formulas' parameters for one period."""
    cal = school_calendar(conn)
    settings = metrics_settings()
    school_days = [d for d in period.dates(upto=period.elapsed_last) if cal.is_school_day(d)]
    return {"p_start": period.start, "p_end": period.end, "p_until": period.until, "p_minutes": period.minutes(),
            "p_last_day": datetime.combine(period.elapsed_last, time(), cal.tz).astimezone(UTC),
            "p_school_days": len(school_days), "tz": period.zone, "poor_loss_pct": settings.poor_loss_pct,
            "silent_hours": settings.silent_hours, **lesson_params(cal, period, school_days)}


def lesson_hours(cal: SchoolCalendar, days: list[date], lo: datetime, hi: datetime) -> list[tuple[datetime, float]]:
    """The lesson hours of these (school) days that overlap [lo, hi): each hour's UTC start and its minutes in it."""
    hours = []
    for day in days:
        for h in LESSON_HOURS:
            start = datetime.combine(day, time(h), cal.tz).astimezone(UTC)
            minutes = (min(start + timedelta(hours=1), hi) - max(start, lo)).total_seconds() / 60.0
            if minutes > 0:
                hours.append((start, minutes))
    return hours


def lesson_params(cal: SchoolCalendar, period: Period, school_days: list[date]) -> dict:
    """The lesson-hours lens of a period: its school days' local midnights, lesson hours and lesson minutes."""
    hours = lesson_hours(cal, school_days, period.start, period.until)
    return {"l_days": [datetime.combine(d, time(), cal.tz).astimezone(UTC) for d in school_days],
            "l_hours": [h for h, _ in hours], "l_minutes": sum(m for _, m in hours)}


def _change(value: float | None, previous: float | None) -> float | None:
    return None if value is None or previous is None else round(value - previous, 4)


def compare(f: Figure, now: list[tuple], before: list[tuple]) -> FigureValue:
    current, previous = combine(f, now), combine(f, before)
    return FigureValue(value=current.value, num=current.num, den=current.den, previous=previous.value,
                       previous_num=previous.num, previous_den=previous.den,
                       change=_change(current.value, previous.value))


def _compute_over(conn: Connection, scope: Scope, user: User, keys: list[str], period: Period,
                  grain: Grain, use_cube: bool = True) -> Figures:
    """Each figure over the period (or its lesson hours) and over the previous one, from the rollups."""
    period = rolled_up(conn, period)
    where, bound = bounded(scope.level, user=user)
    child = child_key(scope.level)
    base = {"scope_code": scope.code, **bound}
    cube = cube_level(conn, scope.level, grain) if use_cube else None
    rows = rows_by_child(conn, keys, child, where, base | period_params(conn, period), grain, cube)
    before = (rows_by_child(conn, keys, child, where, base | period_params(conn, period.previous), grain, cube)
              if period.previous else {})
    kids = children(conn, scope, user)
    child_figures = [ChildFigures(**c.model_dump(), figures={
        k: compare(FIGURES[k], of_child(rows, c.code, k), of_child(before, c.code, k)) for k in keys}) for c in kids]
    totals = {k: compare(FIGURES[k], of_child(rows, None, k), of_child(before, None, k)) for k in keys}
    return Figures(scope=scope, as_of=period.until, figures=totals, children=child_figures,
                   period=period_info(period), **({"hours": "lessons"} if grain == "lessons" else {}))


def rank(result: Figures, key: str, order: str, limit: int) -> list[RankedChild]:
    """Children ordered by one figure, worst or best first; children without a value last."""
    f = FIGURES[key]
    worst_first = (order == "worst") == (f.better == "higher")
    valued = [c for c in result.children if c.figures[key].value is not None]
    valued.sort(key=lambda c: c.figures[key].value, reverse=not worst_first)
    ordered = valued + [c for c in result.children if c.figures[key].value is None]
    compared = result.period is not None
    return [RankedChild(level=c.level, code=c.code, name=c.name, rank=i + 1, value=c.figures[key].value,
                        target=c.figures[key].target,
                        **({"previous": c.figures[key].previous, "change": c.figures[key].change} if compared else {}))
            for i, c in enumerate(ordered[:limit])]


def local_date(conn: Connection, now: datetime) -> date:
    """Today in the schools' time zone."""
    return school_calendar(conn).local(now).date()
