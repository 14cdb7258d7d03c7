"""A figure over time, read from the school-level hourly and daily rollups (never from raw telemetry).

Without a period a trend follows the last `days` days with the registered devices of now as
its denominators. Over a period (`trend_over`) each point is the figure over that bucket of
the period, by the figure's period definition (api/metrics/catalogue.py `over`): online rates
as online device-minutes / in-service device-minutes of the bucket (up to the period's
`until`), use per board per school day over the school days of the bucket.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from psycopg import Connection, sql

from api.auth.models import User
from api.metrics.catalogue import FIGURES
from api.metrics.models import TrendPoint
from api.metrics.service import lesson_hours, lesson_params, school_calendar
from api.scopes.access import bounded
from api.scopes.models import Scope
from core.period import Period
from core.settings import platform_settings

MINUTES = {"hour": 60, "day": 1440, "week": 7 * 1440}


@dataclass(frozen=True)
class TrendSource:
    """How to follow one figure over time: which rollup, what to add up, what to divide by."""

    kind: str | None
    num: str
    den: str | None  # "device_minutes", "board_school_days" or None
    aggregate: str = "sum"


TRENDS: dict[str, TrendSource] = {
    "online_rate": TrendSource(None, "sum(r.online_minutes)", "device_minutes"),
    "board_online_rate": TrendSource("board", "sum(r.online_minutes)", "device_minutes"),
    "recorder_online_rate": TrendSource("recorder", "sum(r.online_minutes)", "device_minutes"),
    "gateway_online_rate": TrendSource("gateway", "sum(r.online_minutes)", "device_minutes"),
    "use_hours_per_board_day": TrendSource("board", "sum(r.active_use_s) / 3600.0", "board_school_days"),
    "streamed_hours_7d": TrendSource("recorder", "sum(r.streaming_minutes) / 60.0", None),
    "recorded_hours_7d": TrendSource("recorder", "sum(r.recording_minutes) / 60.0", None),
    "peak_utilisation_today": TrendSource("gateway", "max(r.utilisation_max)", None, "max"),
}

_TREND = """
SELECT {bucket} AS bucket, {num} AS num
FROM {rollup} r JOIN school s ON s.code = r.school_code
WHERE {where} AND r.bucket >= %(start)s {kind}
GROUP BY 1 ORDER BY 1
"""

_REGISTERED = "SELECT coalesce(sum(r.devices), 0) AS n FROM school_now r JOIN school s ON s.code = r.school_code " \
              "WHERE {where} {kind}"


def _bucket_expr(bucket: str) -> sql.Composable:
    if bucket == "week":
        return sql.SQL("date_trunc('week', r.bucket AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s")
    return sql.SQL("r.bucket")


def trend(conn: Connection, scope: Scope, user: User, key: str, bucket: str, days: int,
          now: datetime | None = None) -> list[TrendPoint]:
    """The figure's value per bucket over the last `days` days for the scope."""
    source = TRENDS[key]
    now = now or datetime.now(UTC)
    tz = platform_settings().timezone
    where, params = bounded(scope.level, user=user)
    kind = sql.SQL("AND r.kind = %(kind)s") if source.kind else sql.SQL("")
    params |= {"scope_code": scope.code, "start": now - timedelta(days=days), "tz": tz, "kind": source.kind}
    rollup = sql.Identifier("school_hourly" if bucket == "hour" else "school_daily")
    query = sql.SQL(_TREND).format(bucket=_bucket_expr(bucket), num=sql.SQL(source.num), rollup=rollup,
                                   where=where, kind=kind)
    rows = conn.execute(query, params).fetchall()
    registered = conn.execute(sql.SQL(_REGISTERED).format(where=where, kind=kind), params).fetchone()["n"]
    cal = school_calendar(conn)
    points = []
    for r in rows:
        num = None if r["num"] is None else float(r["num"])
        den = _denominator(source, bucket, registered, r["bucket"], cal)
        value = (num / den if den else None) if source.den else num
        points.append(TrendPoint(bucket=r["bucket"], num=num, den=den,
                                 value=None if value is None else round(value, 4)))
    return points


def _denominator(source: TrendSource, bucket: str, registered: int, start: datetime, cal) -> float | None:
    if source.den == "device_minutes":
        return float(registered * MINUTES[bucket])
    if source.den == "board_school_days":
        days = 7 if bucket == "week" else 1
        local = cal.local(start).date()
        school_days = sum(cal.is_school_day(local + timedelta(days=i)) for i in range(days))
        return float(registered * school_days) if bucket != "hour" else None
    return None


def has_trend(key: str) -> bool:
    """True when the figure can be followed over time."""
    return key in TRENDS and key in FIGURES


_TREND_OVER = """
SELECT {bucket} AS bucket, {num} AS num
FROM {rollup} r JOIN school s ON s.code = r.school_code
WHERE {where} AND r.bucket >= %(start)s AND r.bucket < %(end)s AND r.bucket < %(until)s {kind}
GROUP BY 1 ORDER BY 1
"""

# In service at `until`: when each device came into service (in_service_since, sql/023_county_cube.sql,
# as api/metrics/catalogue.py's period templates count it).
_IN_SERVICE = """
SELECT in_service_since(d.registered_at, d.installed_on, %(tz)s) AS since
FROM device d JOIN school s ON s.code = d.school_code
WHERE {where} {kind} AND in_service_since(d.registered_at, d.installed_on, %(tz)s) < %(until)s
"""


def _bucket_end(bucket: str, start: datetime, tz) -> datetime:
    if bucket == "hour":
        return start + timedelta(hours=1)
    local = start.astimezone(tz).date() + timedelta(days=7 if bucket == "week" else 1)
    return datetime.combine(local, time(), tz).astimezone(UTC)


# Through the lesson-hours lens: hours are the lesson hours of school days; days and weeks read
# each school day's lesson-hour sums (sql/022_lesson_hours.sql).
_LESSON_COLUMNS = {f"r.{c}": f"r.lesson_{c}" for c in ("online_minutes", "active_use_s", "recording_minutes",
                                                       "streaming_minutes", "powered_on_minutes")}
_LESSON_ROWS = {"hour": sql.SQL(" AND r.bucket = ANY(%(l_hours)s::timestamptz[])"),
                "day": sql.SQL(" AND r.bucket = ANY(%(l_days)s::timestamptz[])")}


def _lesson_num(num: str, bucket: str) -> str:
    if bucket == "hour":
        return num
    for whole, lesson in _LESSON_COLUMNS.items():
        num = num.replace(whole, lesson)
    return num


def trend_over(conn: Connection, scope: Scope, user: User, key: str, bucket: str, period: Period, *,
               lessons: bool = False) -> list[TrendPoint]:
    """The figure's value per bucket over the days of the period, each by the figure's period definition;
    with `lessons`, over the lesson hours of the period's school days only (no points for other days)."""
    source = TRENDS[key]
    cal = school_calendar(conn)
    where, params = bounded(scope.level, user=user)
    kind = sql.SQL("AND r.kind = %(kind)s") if source.kind else sql.SQL("")
    params |= {"scope_code": scope.code, "start": period.start, "end": period.end, "until": period.until,
               "tz": period.zone, "kind": source.kind}
    num = source.num
    if lessons:
        params |= lesson_params(cal, period, [d for d in period.dates(upto=period.elapsed_last)
                                              if cal.is_school_day(d)])
        kind = sql.Composed([kind, _LESSON_ROWS["hour" if bucket == "hour" else "day"]])
        num = _lesson_num(num, bucket)
    rollup = sql.Identifier("school_hourly" if bucket == "hour" else "school_daily")
    query = sql.SQL(_TREND_OVER).format(bucket=_bucket_expr(bucket), num=sql.SQL(num), rollup=rollup,
                                        where=where, kind=kind)
    rows = conn.execute(query, params).fetchall()
    device_kind = sql.SQL("AND d.kind = %(kind)s") if source.kind else sql.SQL("")
    since = [r["since"] for r in conn.execute(sql.SQL(_IN_SERVICE).format(where=where, kind=device_kind), params)]
    minutes = _lesson_minutes(cal) if lessons else _minutes
    found = {r["bucket"]: r["num"] for r in rows}
    points = []
    for start in _buckets(bucket, period, cal, lessons, params):
        lo = max(start, period.start)
        hi = min(_bucket_end(bucket, start, cal.tz), period.until)
        den = _denominator_over(source, bucket, since, lo, hi, period, cal, minutes)
        if start in found:
            num = None if found[start] is None else float(found[start])
        else:  # no rollups in it: nothing online, used or recorded, where there was anything to be
            in_service = any(s < hi for s in since)
            num = 0.0 if (den if source.den else in_service and source.aggregate == "sum") else None
        value = (num / den if den else None) if source.den else num
        points.append(TrendPoint(bucket=start, num=num, den=den, value=None if value is None else round(value, 4)))
    return points


def _buckets(bucket: str, period: Period, cal, lessons: bool, params: dict) -> list[datetime]:
    """Every bucket of the period up to `until` (through the lens: lesson hours, or school days), so a
    bucket without rollups is a point of its own, as the figure asked over it would be."""
    if bucket == "hour":
        if lessons:
            return list(params["l_hours"])
        hours = []
        at = period.start
        while at < period.until:
            hours.append(at)
            at += timedelta(hours=1)
        return hours
    days = [d for d in period.dates(upto=period.elapsed_last) if not lessons or cal.is_school_day(d)]
    if bucket == "week":
        days = sorted({d - timedelta(days=d.isoweekday() - 1) for d in days})
    return [datetime.combine(d, time(), cal.tz).astimezone(UTC) for d in days]


def _minutes(lo: datetime, hi: datetime) -> float:
    return max(0.0, (hi - lo).total_seconds() / 60.0)


def _lesson_minutes(cal):
    """Minutes of [lo, hi) that fall in the lesson hours of school days."""
    def minutes(lo: datetime, hi: datetime) -> float:
        if hi <= lo:
            return 0.0
        first, last = cal.local(lo).date(), cal.local(hi).date()
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        return sum(m for _, m in lesson_hours(cal, [d for d in days if cal.is_school_day(d)], lo, hi))
    return minutes


def _denominator_over(source: TrendSource, bucket: str, since: list[datetime], lo: datetime, hi: datetime,
                      period: Period, cal, minutes=_minutes) -> float | None:
    if source.den == "device_minutes":  # in-service device-minutes between lo and hi
        before = sum(s <= lo for s in since)  # in service all along: counted once, not once a device
        return round(before * minutes(lo, hi) + sum(minutes(s, hi) for s in since if s > lo), 4)
    if source.den == "board_school_days" and bucket != "hour":
        first, last = cal.local(lo).date(), min(cal.local(hi - timedelta(microseconds=1)).date(), period.elapsed_last)
        school_days = sum(cal.is_school_day(first + timedelta(days=i)) for i in range((last - first).days + 1))
        return float(len(since) * school_days)
    return None
