"""Compute figures for a scope and its children, rank children, and follow a figure over time."""

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic

from psycopg import Connection, sql

from api.auth.models import User
from api.metrics.catalogue import FIGURES, Figure, uses_now
from api.metrics.models import ChildFigures, Figures, FigureValue, RankedChild
from api.metrics.settings import metrics_settings
from api.scopes.access import bounded
from api.scopes.models import Scope
from api.scopes.service import children
from core.calendar import SchoolCalendar, load_calendar
from core.scope import child_key
from core.settings import platform_settings
from rollups.school_now import ensure_fresh

_CALENDAR_TTL_S = 300.0
_calendar: dict = {}  # the calendar changes a few times a year: keep it for a few minutes


def school_calendar(conn: Connection) -> SchoolCalendar:
    """The school calendar, re-read at most every few minutes."""
    cache = _calendar
    if not cache or monotonic() - cache["at"] > _CALENDAR_TTL_S:
        cache.update(at=monotonic(), calendar=load_calendar(conn, platform_settings().timezone))
    return cache["calendar"]


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


def _combine(f: Figure, rows: list[tuple[float | None, float | None]]) -> FigureValue:
    nums = [n for n, _ in rows if n is not None]
    if f.aggregation == "max":
        num = max(nums) if nums else None
        return FigureValue(value=_value(f, num, None), num=num, den=None)
    num = sum(nums) if nums else None
    den = sum(d for _, d in rows if d is not None) if f.aggregation == "ratio" else None
    return FigureValue(value=_value(f, num, den), num=num, den=den)


def _query(f_group: list[Figure], child: sql.Composable, where: sql.Composable) -> sql.Composed:
    first = f_group[0]
    columns = sql.SQL(", ").join(
        sql.SQL("({}) AS {}, ({}) AS {}").format(sql.SQL(f.num), sql.Identifier(f"num_{f.key}"),
                                                 sql.SQL(f.den), sql.Identifier(f"den_{f.key}"))
        for f in f_group)
    return sql.SQL(first.template).format(child=child, columns=columns, where=where,
                                          extra=sql.SQL(first.extra))


def compute(conn: Connection, scope: Scope, user: User, keys: list[str], now: datetime | None = None) -> Figures:
    """The figures for the scope and each child the user may see."""
    now = now or datetime.now(UTC)
    if uses_now([FIGURES[k] for k in keys]):
        now = ensure_fresh(conn, metrics_settings().now_max_age_s) or now
    where, params = bounded(scope.level, user=user)
    params |= {"scope_code": scope.code} | window_params(conn, now)
    child = child_key(scope.level)
    groups: dict[tuple[str, str], list[Figure]] = defaultdict(list)
    for key in keys:
        f = FIGURES[key]
        groups[(f.template, f.extra)].append(f)
    rows_by_child: dict[str, dict[str, tuple]] = defaultdict(dict)
    for group in groups.values():
        for row in conn.execute(_query(group, child, where), params):
            for f in group:
                rows_by_child[row["child"]][f.key] = (row[f"num_{f.key}"], row[f"den_{f.key}"])
    kids = children(conn, scope, user)
    child_figures = [
        ChildFigures(**c.model_dump(), figures={
            k: _combine(FIGURES[k], [rows_by_child[c.code][k]] if k in rows_by_child.get(c.code, {}) else [])
            for k in keys})
        for c in kids
    ]
    totals = {k: _combine(FIGURES[k], [r[k] for r in rows_by_child.values() if k in r]) for k in keys}
    return Figures(scope=scope, as_of=now, figures=totals, children=child_figures)


def rank(result: Figures, key: str, order: str, limit: int) -> list[RankedChild]:
    """Children ordered by one figure, worst or best first; children without a value last."""
    f = FIGURES[key]
    worst_first = (order == "worst") == (f.better == "higher")
    valued = [c for c in result.children if c.figures[key].value is not None]
    valued.sort(key=lambda c: c.figures[key].value, reverse=not worst_first)
    ordered = valued + [c for c in result.children if c.figures[key].value is None]
    return [RankedChild(level=c.level, code=c.code, name=c.name, rank=i + 1, value=c.figures[key].value,
                        target=c.figures[key].target) for i, c in enumerate(ordered[:limit])]


def local_date(conn: Connection, now: datetime) -> date:
    """Today in the schools' time zone."""
    return school_calendar(conn).local(now).date()
