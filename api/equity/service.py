"""The coefficient of variation of the national 优质均衡 standard, applied to informatization indicators.

For a group of schools with enrolment P_i and indicator X_i (P = sum of P_i):
mean = sum(X_i P_i) / P,  S = sqrt(sum((P_i / P) (X_i - mean)^2)),  CV = S / mean.
The composite coefficient is the mean of the indicators' CVs. The bar it is judged
against (the national ≤ 0.50 primary, ≤ 0.45 junior) is a target in the target table
(`equity_cv_primary`, `equity_cv_junior`), attached by api/targets; a group over fewer
than EQUITY_MIN_SCHOOLS schools is not judged. Teaching points under 50 students are
left out, as the standard does. Nine-year schools count in both groups.
"""

from collections import defaultdict
from datetime import UTC, datetime

from psycopg import Connection, sql

from api.auth.models import User
from api.equity.models import CountyEquity, Equity, GroupEquity, IndicatorCV, LocaleGap
from api.equity.settings import equity_settings
from api.metrics.models import period_info
from api.metrics.service import period_params, rolled_up, window_params
from api.scopes.access import bounded
from api.scopes.models import Scope
from core.period import Period

GROUP_STAGES = {"primary": ("primary", "nine_year", "teaching_point"), "junior": ("junior", "nine_year")}
INDICATORS = ("boards_per_100_students", "online_rate", "use_hours_per_class_day", "mbps_per_student",
              "remote_lessons_per_class")

# One row per school: its enrolment and each indicator's value.
_SCHOOL_VALUES = """
SELECT s.code, s.county_code, s.locale, s.stage, s.students::float AS p,
       100.0 * count(d.id) FILTER (WHERE d.kind = 'board') / nullif(s.students, 0) AS boards_per_100_students,
       count(d.id) FILTER (WHERE st.online)::float / nullif(count(d.id), 0) AS online_rate,
       coalesce(max(u.use_s), 0) / 3600.0 / nullif(s.classes * greatest(%(school_days)s, 1), 0)
           AS use_hours_per_class_day,
       s.uplink_mbps::float / nullif(s.students, 0) AS mbps_per_student,
       coalesce(sum(rl.lessons), 0)::float / nullif(s.classes, 0) AS remote_lessons_per_class
FROM school s
LEFT JOIN device d ON d.school_code = s.code
LEFT JOIN device_state st ON st.device_id = d.id
LEFT JOIN (SELECT school_code, sum(active_use_s) AS use_s FROM school_daily
           WHERE bucket >= %(since)s AND kind = 'board' GROUP BY school_code) u ON u.school_code = s.code
LEFT JOIN (SELECT device_id, count(*) AS lessons FROM remote_lesson_receiver GROUP BY device_id) rl
       ON rl.device_id = d.id
WHERE {where} AND s.students > 0 AND NOT (s.stage = 'teaching_point' AND s.students < 50)
GROUP BY s.code
"""

# The same over a period (core/period.py): devices in service at its end (installed or registered
# before it), their availability over it (online / in-service device-minutes, as the figure
# online_rate over a period), board use over its school days, and the lessons timetabled in it.
_SCHOOL_VALUES_OVER = """
SELECT s.code, s.county_code, s.locale, s.stage, s.students::float AS p,
       100.0 * count(d.id) FILTER (WHERE d.kind = 'board') / nullif(s.students, 0) AS boards_per_100_students,
       max(o.online_min) / nullif(max(o.device_minutes), 0) AS online_rate,
       coalesce(max(u.use_s), 0) / 3600.0 / nullif(s.classes * %(p_school_days)s, 0) AS use_hours_per_class_day,
       s.uplink_mbps::float / nullif(s.students, 0) AS mbps_per_student,
       coalesce(sum(rl.lessons), 0)::float / nullif(s.classes, 0) AS remote_lessons_per_class
FROM school s
LEFT JOIN device d ON d.school_code = s.code
     AND in_service_since(d.registered_at, d.installed_on, %(tz)s) < %(p_until)s
LEFT JOIN (SELECT i.school_code, sum(coalesce(r.online_min, 0)) AS online_min,
                  sum(i.device_minutes) AS device_minutes
           FROM (SELECT d.school_code, d.kind,
                        sum(date_part('epoch', %(p_until)s - greatest(%(p_start)s,
                            in_service_since(d.registered_at, d.installed_on, %(tz)s))) / 60.0) AS device_minutes
                 FROM device d JOIN school s ON s.code = d.school_code
                 WHERE {where} AND in_service_since(d.registered_at, d.installed_on, %(tz)s) < %(p_until)s
                 GROUP BY 1, 2) i
           LEFT JOIN (SELECT r.school_code, r.kind, sum(r.online_minutes) AS online_min
                      FROM school_daily r JOIN school s ON s.code = r.school_code
                      WHERE {where} AND r.bucket >= %(p_start)s AND r.bucket <= %(p_last_day)s GROUP BY 1, 2) r
                  ON r.school_code = i.school_code AND r.kind = i.kind
           GROUP BY 1) o ON o.school_code = s.code
LEFT JOIN (SELECT r.school_code, sum(r.active_use_s) AS use_s
           FROM school_daily r JOIN school s ON s.code = r.school_code
           WHERE {where} AND r.kind = 'board' AND r.bucket >= %(p_start)s AND r.bucket <= %(p_last_day)s
           GROUP BY 1) u ON u.school_code = s.code
LEFT JOIN (SELECT r.device_id, count(*) AS lessons FROM remote_lesson_receiver r
           JOIN remote_lesson l ON l.id = r.lesson_id
           WHERE l.valid_from <= %(p_last)s AND l.valid_until >= %(p_first)s GROUP BY 1) rl ON rl.device_id = d.id
WHERE {where} AND s.students > 0 AND NOT (s.stage = 'teaching_point' AND s.students < 50)
GROUP BY s.code
"""

# Enrolment-weighted mean and CV per (county, indicator) over the rows above, in SQL.
_CV = """
WITH v AS ({values}),
long AS (SELECT v.county_code, v.code, v.p, i.indicator, i.x
         FROM v CROSS JOIN LATERAL (VALUES {pairs}) AS i(indicator, x)
         WHERE v.stage = ANY(%(stages)s) AND i.x IS NOT NULL),
m AS (SELECT county_code, indicator, sum(p * x) / sum(p) AS mean, sum(p) AS total, count(*) AS n
      FROM long GROUP BY 1, 2)
SELECT l.county_code, l.indicator, m.n AS schools, m.total AS students, m.mean,
       sqrt(sum(l.p / m.total * (l.x - m.mean) ^ 2)) / nullif(m.mean, 0) AS cv
FROM long l JOIN m USING (county_code, indicator)
GROUP BY l.county_code, l.indicator, m.n, m.total, m.mean
"""

_GAP = """
WITH v AS ({values}),
long AS (SELECT v.locale, v.p, i.indicator, i.x FROM v CROSS JOIN LATERAL (VALUES {pairs}) AS i(indicator, x)
         WHERE i.x IS NOT NULL)
SELECT indicator, locale, sum(p * x) / sum(p) AS mean FROM long GROUP BY 1, 2
"""


def _pairs() -> sql.Composable:
    return sql.SQL(", ").join(sql.SQL("({}, v.{})").format(sql.Literal(i), sql.Identifier(i)) for i in INDICATORS)


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def equity(conn: Connection, scope: Scope, user: User, now: datetime | None = None,
           period: Period | None = None) -> Equity:
    """The CV of every indicator per county and school group, and the locale gap, for the scope: now
    (availability now, use over the use window), or over a period."""
    where, params = bounded(scope.level, user=user)
    params |= {"scope_code": scope.code}
    over = period is not None and not period.is_now
    if over:
        period = rolled_up(conn, period)
        params |= period_params(conn, period) | {"p_first": period.first, "p_last": period.last}
    else:
        params |= window_params(conn, now or datetime.now(UTC))
    values = sql.SQL(_SCHOOL_VALUES_OVER if over else _SCHOOL_VALUES).format(where=where)
    by_county: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for group, stages in GROUP_STAGES.items():
        query = sql.SQL(_CV).format(values=values, pairs=_pairs())
        for r in conn.execute(query, params | {"stages": list(stages)}):
            by_county[r["county_code"]][group].append(r)
    names = {r["code"]: r["name"] for r in conn.execute(sql.SQL(
        "SELECT DISTINCT k.code, k.name FROM county k JOIN school s ON s.county_code = k.code WHERE {}"
    ).format(where), params)}
    counties = [CountyEquity(level="county", code=code, name=names.get(code, code),
                             groups=[_group(g, rows) for g, rows in sorted(groups.items())])
                for code, groups in sorted(by_county.items())]
    gap_rows = conn.execute(sql.SQL(_GAP).format(values=values, pairs=_pairs()), params).fetchall()
    answer = Equity(scope=scope, counties=counties, gap=_gap(gap_rows), min_schools=equity_settings().min_schools)
    return answer.model_copy(update={"period": period_info(period)}) if over else answer


def _group(group: str, rows: list[dict]) -> GroupEquity:
    indicators = [IndicatorCV(indicator=r["indicator"], schools=r["schools"], mean=_round(r["mean"]),
                              cv=_round(r["cv"])) for r in sorted(rows, key=lambda r: INDICATORS.index(r["indicator"]))]
    cvs = [i.cv for i in indicators if i.cv is not None]
    composite = _round(sum(cvs) / len(cvs)) if cvs else None
    schools = max((r["schools"] for r in rows), default=0)
    # No bar yet: the target that applies is attached by api/targets (attach_equity).
    return GroupEquity(group=group, schools=schools, students=int(max((r["students"] for r in rows), default=0)),
                       indicators=indicators, composite_cv=composite,
                       judged=schools >= equity_settings().min_schools, bar=None, passes=None)


def _gap(rows: list[dict]) -> list[LocaleGap]:
    means: dict[str, dict[str, float]] = defaultdict(dict)
    for r in rows:
        means[r["indicator"]][r["locale"]] = r["mean"]
    out = []
    for indicator in INDICATORS:
        m = means.get(indicator, {})
        urban, rural = m.get("urban"), m.get("rural")
        out.append(LocaleGap(indicator=indicator, urban=_round(urban), town=_round(m.get("town")),
                             rural=_round(rural),
                             rural_to_urban=_round(rural / urban) if urban and rural is not None else None))
    return out
