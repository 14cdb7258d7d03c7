"""Measures a target can be set on beyond the figure catalogue, each computed by the context that owns it.

A figure (api/metrics/catalogue.py) is one SQL formula combined across children. The policy
targets a bureau works to also name measures that other contexts compute their own way: the
share of schools inside a 教联体 (api/communities), the composite 差异系数 (api/equity), the
开课率 and the teaching-point reach of the three classrooms (api/lessons). Each measure here
asks its service for the scope's value and each child's, so its formula stays where it is
and the 目标调度 league table, the communities page and the equity page read the same number.

Every measure is "now": coverage as recorded, equity with availability now and use over the
use window, the lesson measures over the current ISO week (as the 三个课堂 page shows them).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from psycopg import Connection

from api.auth.models import User
from api.communities import service as communities
from api.equity import service as equity
from api.lessons import service as lessons
from api.metrics.catalogue import FIGURES
from api.scopes.models import Scope, ScopeRef
from api.scopes.service import children
from api.targets.paths import county_paths, lies_in


@dataclass(frozen=True)
class Standing:
    """A measure's value for a scope, and each child's (None: no data)."""

    value: float | None
    children: list[tuple[ScopeRef, float | None]]


@dataclass(frozen=True)
class Measure:
    """A targetable measure: its names, unit, which direction is better, and who computes it."""

    key: str
    zh: str
    en: str
    unit: str
    better: Literal["higher", "lower"]
    description: str
    standing: Callable[[Connection, Scope, User], Standing]

    @property
    def comparator(self) -> str:
        """The only comparator a target on this measure makes sense with."""
        return ">=" if self.better == "higher" else "<="


def _ref(child: ScopeRef) -> ScopeRef:
    return ScopeRef(level=child.level, code=child.code, name=child.name)


def _coverage(conn: Connection, scope: Scope, user: User) -> Standing:
    answer = communities.coverage(conn, scope, user)
    return Standing(answer.figures.coverage_rate, [(_ref(c), c.figures.coverage_rate) for c in answer.children])


def _this_week(field: str) -> Callable[[Connection, Scope, User], Standing]:
    """A lesson figure of all kinds of classroom over the current ISO week."""

    def standing(conn: Connection, scope: Scope, user: User) -> Standing:
        summary = lessons.summary(conn, scope, user, week=None)

        def value(figures: list) -> float | None:
            return getattr(next(f for f in figures if f.kind == "all"), field)

        return Standing(value(summary.figures), [(_ref(c), value(c.figures)) for c in summary.children])

    return standing


def _composite(group: str) -> Callable[[Connection, Scope, User], Standing]:
    """The composite coefficient of a school group: a county's own; above a county, its worst judged
    county's (a city or province meets the bar only when every county that can be judged does)."""

    def standing(conn: Connection, scope: Scope, user: User) -> Standing:
        answer = equity.equity(conn, scope, user)
        judged = {c.code: g.composite_cv for c in answer.counties for g in c.groups
                  if g.group == group and g.judged and g.composite_cv is not None}
        paths = county_paths(conn, list(judged))

        def worst(codes: list[str]) -> float | None:
            return max((judged[code] for code in codes), default=None)

        kids = [(_ref(kid), worst([code for code in judged if lies_in(paths.get(code, []), kid)]))
                for kid in children(conn, scope, user)]
        return Standing(worst(list(judged)), kids)

    return standing


MEASURES: dict[str, Measure] = {m.key: m for m in (
    Measure("community_coverage", "义务教育学校入教联体比例", "Schools inside a community", "ratio", "higher",
            "compulsory-education schools (primary, junior, nine-year, teaching points) that lead or belong to "
            "a community / compulsory-education schools", _coverage),
    Measure("equity_cv_primary", "小学综合差异系数", "Composite CV, primary", "coefficient", "lower",
            "the county's composite coefficient of variation of primary schools; above a county the worst "
            "judged county's; no data under EQUITY_MIN_SCHOOLS schools (样本不足)", _composite("primary")),
    Measure("equity_cv_junior", "初中综合差异系数", "Composite CV, junior", "coefficient", "lower",
            "the county's composite coefficient of variation of junior schools; above a county the worst "
            "judged county's; no data under EQUITY_MIN_SCHOOLS schools (样本不足)", _composite("junior")),
    Measure("lesson_opening_rate", "三个课堂开课率", "Remote-lesson opening rate", "ratio", "higher",
            "held / past sessions delivered from the scope's main classrooms, this ISO week",
            _this_week("opening_rate")),
    Measure("teaching_point_reach", "教学点覆盖率", "Teaching points reached", "ratio", "higher",
            "teaching points of the scope whose classroom joined at least one held remote lesson this ISO week / "
            "teaching points of the scope", _this_week("teaching_point_reach")),
)}

if set(MEASURES) & set(FIGURES):  # one key, one meaning: a target names either a figure or a measure
    raise RuntimeError(f"measure keys clash with figures: {sorted(set(MEASURES) & set(FIGURES))}")

TARGETABLE: tuple[str, ...] = (*FIGURES, *MEASURES)
