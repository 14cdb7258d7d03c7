"""Which schools stand behind a figure: every school of a scope with its own value of the figure.

The values come from the catalogue's formulas (api/metrics/catalogue.py) through service.py's
query builders, with the school's own code as the child key. A school's row here is therefore
the very row its county's figure adds up: the list and the figures cannot disagree. Over a
period each school also carries its value over the previous period and the change.

The name filter narrows the schools inside the SQL (every template reads `school` as `s`), so
a search over a province computes the figure for the schools it finds only.
"""

from datetime import UTC, datetime
from typing import Literal

from psycopg import Connection, sql
from pydantic import Field

from api.auth.models import User
from api.metrics import service
from api.metrics.catalogue import FIGURES, uses_now
from api.metrics.models import FigureInfo, FigureValue, OmitUnset, PeriodInfo, period_info
from api.metrics.settings import metrics_settings
from api.scopes.access import bounded
from api.scopes.models import Scope
from core.period import Period
from rollups.school_now import ensure_fresh

Order = Literal["worst", "best"]
SortBy = Literal["value", "change"]
SCHOOL = sql.Identifier("s", "code")  # the child key that makes every school its own child

# A school whose name or county's name holds the text, or whose code starts with it (null: every school).
_NAMED = sql.SQL("(%(member_q)s::text IS NULL OR strpos(lower(s.name), lower(%(member_q)s)) > 0 "
                 "OR starts_with(s.code, %(member_q)s) OR s.county_code IN "
                 "(SELECT c.code FROM county c WHERE strpos(lower(c.name), lower(%(member_q)s)) > 0))")

_SCHOOLS = """
SELECT s.code, s.name, s.county_code, co.name AS county_name, s.city_code, ci.name AS city_name
FROM school s LEFT JOIN county co ON co.code = s.county_code LEFT JOIN city ci ON ci.code = s.city_code
WHERE {where}
"""


class SchoolFigure(OmitUnset):
    """One school of the scope with its value of the figure (and, over a period, the previous one)."""

    OPTIONAL = frozenset({"previous", "previous_num", "previous_den", "change"})

    rank: int = Field(description="its place in the order asked, among the schools that match the filter")
    code: str
    name: str
    county_code: str | None
    county_name: str | None
    city_code: str | None
    city_name: str | None
    value: float | None
    num: float | None
    den: float | None
    previous: float | None = Field(None, description="its value over the previous period (only with a period)")
    previous_num: float | None = Field(None, description="its numerator (only with a period)")
    previous_den: float | None = Field(None, description="its denominator (only with a period)")
    change: float | None = Field(None, description="value − previous (only with a period)")


class SchoolMembers(OmitUnset):
    """The schools behind a scope's figure, worst or best first, one page of them with the total."""

    OPTIONAL = frozenset({"period", "hours"})

    scope: Scope
    figure: FigureInfo
    order: Order
    by: SortBy = Field(description="what the order is by: the value, or its change since the previous period")
    q: str | None = Field(description="the filter applied (a part of the school's or county's name, or the start "
                                      "of the school's code), if any")
    as_of: datetime
    total: int = Field(description="schools of the scope (inside the user's bounds) that match the filter")
    offset: int
    limit: int
    items: list[SchoolFigure]
    period: PeriodInfo | None = Field(None, description="the period the values answer for (only with a period)")
    hours: Literal["lessons"] | None = Field(None, description="`lessons` with hours=lessons")


class NoHistory(ValueError):
    """The figure cannot answer as asked (no formula over a period, or the lesson-hours lens without one)."""


def _schools(conn: Connection, where: sql.Composable, params: dict) -> list[dict]:
    return conn.execute(sql.SQL(_SCHOOLS).format(where=where), params).fetchall()


def _values_now(conn: Connection, key: str, where: sql.Composable, params: dict, codes: list[str],
                now: datetime | None) -> tuple[dict[str, FigureValue], datetime]:
    """Each school's value of the figure now, by the catalogue's formula."""
    f = FIGURES[key]
    now = now or datetime.now(UTC)
    if uses_now([f]):
        now = ensure_fresh(conn, metrics_settings().now_max_age_s) or now
    rows = service.rows_by_child(conn, [key], SCHOOL, where, params | service.window_params(conn, now), "now")
    return {code: service.combine(f, service.of_child(rows, code, key)) for code in codes}, now


def _values_over(conn: Connection, key: str, where: sql.Composable, params: dict, codes: list[str], period: Period,
                 grain: service.Grain) -> dict[str, FigureValue]:
    """Each school's value of the figure over the period (or its lesson hours), with its value over the
    previous period."""
    f = FIGURES[key]
    rows = service.rows_by_child(conn, [key], SCHOOL, where, params | service.period_params(conn, period), grain)
    before = (service.rows_by_child(conn, [key], SCHOOL, where, params | service.period_params(conn, period.previous),
                                     grain) if period.previous else {})
    return {code: service.compare(f, service.of_child(rows, code, key), service.of_child(before, code, key))
            for code in codes}


def ordered(rows: list[dict], key: str, order: Order, by: SortBy = "value") -> list[dict]:
    """Schools worst or best first by the figure's value or its change (as service.rank orders children);
    those without one last, ties in code order."""
    worst_first = (order == "worst") == (FIGURES[key].better == "higher")
    valued = sorted((r for r in rows if r[by] is not None), key=lambda r: r["code"])
    valued.sort(key=lambda r: r[by], reverse=not worst_first)
    return valued + sorted((r for r in rows if r[by] is None), key=lambda r: r["code"])


def _grain(key: str, period: Period, lessons: bool, by: SortBy) -> service.Grain:
    """How the figure answers: now, over the period, or over its lesson hours; NoHistory when it cannot."""
    if by == "change" and period.is_now:
        raise NoHistory("an order by the change needs a period: give period= or from=/to=")
    if lessons:
        try:
            service.check_lens([key], period)
        except service.LensError as exc:
            raise NoHistory(str(exc)) from None
        return "lessons"
    if period.is_now:
        return "now"
    if service.formula(FIGURES[key], "period") is None:
        raise NoHistory(f"figure {key!r} has no history to answer over a period")
    return "period"


def school_figures(conn: Connection, scope: Scope, user: User, key: str, period: Period, *, order: Order = "worst",
                   by: SortBy = "value", q: str | None = None, lessons: bool = False, now: datetime | None = None
                   ) -> tuple[list[dict], datetime, PeriodInfo | None]:
    """Every school of the scope the user may see (matching `q`) with its value of figure `key`, in
    `order` by its value or change, ranked: now, over the period, or over its lesson hours (`lessons`).
    Also the moment the values describe and the period they answer for (None for now). NoHistory when
    it cannot answer as asked."""
    grain = _grain(key, period, lessons, by)
    where, bound = bounded(scope.level, user=user)
    where = sql.SQL("({}) AND {}").format(where, _NAMED)
    params = {"scope_code": scope.code, **bound, "member_q": q or None}
    schools = _schools(conn, where, params)
    codes = [school["code"] for school in schools]
    if grain == "now":
        (values, as_of), info = _values_now(conn, key, where, params, codes, now), None
    else:
        period = service.rolled_up(conn, period)
        values, as_of, info = (_values_over(conn, key, where, params, codes, period, grain), period.until,
                               period_info(period))
    # now, a value leaves out previous and change, as the figures route's children do
    rows = [{**school, **values[school["code"]].model_dump(exclude={"target"}, exclude_unset=info is None)}
            for school in schools]
    return [{"rank": i, **r} for i, r in enumerate(ordered(rows, key, order, by), start=1)], as_of, info
