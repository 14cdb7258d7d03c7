"""目标调度: every target that applies to a scope, the scope's standing, time left, and the league table.

A target on a figure is judged on the figure's value now (api/metrics); a target on a measure
on the value its own context computes (api/targets/measures.py). Either way each child is
judged against the same target, worst first, so a manager sees who holds the scope back.
"""

from datetime import UTC, date, datetime

from psycopg import Connection

from api.auth.models import User
from api.metrics import service as metrics
from api.metrics.catalogue import FIGURES
from api.metrics.models import RankedChild
from api.scopes.models import Scope
from api.targets.measures import MEASURES, Measure, Standing
from api.targets.models import Target, TargetProgress
from api.targets.paths import scope_path
from api.targets.service import judge, targets_on


def _progress(target: Target, value: float | None, league: list[RankedChild], today: date) -> TargetProgress:
    standing = judge(target, value, today)
    days_left = (target.deadline - today).days
    return TargetProgress(target=target, scope_value=value, scope_status=standing, days_left=days_left,
                          overdue=days_left < 0 and standing.status != "met", children=league)


def _figure_targets(conn: Connection, scope: Scope, user: User, targets: list[Target]) -> dict[int, TargetProgress]:
    """Targets on catalogue figures: the figures now, children ranked worst first by the figure."""
    result = metrics.compute(conn, scope, user, sorted({t.figure for t in targets}))
    today = metrics.local_date(conn, result.as_of)
    out = {}
    for t in targets:
        league = [RankedChild(**c.model_dump(exclude={"target"}), target=judge(t, c.value, today))
                  for c in metrics.rank(result, t.figure, "worst", len(result.children))]
        out[t.id] = _progress(t, result.figures[t.figure].value, league, today)
    return out


def _league(measure: Measure, standing: Standing, target: Target, today: date) -> list[RankedChild]:
    """Children worst first by the measure's direction, those without a value last."""
    valued = sorted(((c, v) for c, v in standing.children if v is not None), key=lambda cv: cv[1],
                    reverse=measure.better == "lower")
    ordered = valued + [(c, v) for c, v in standing.children if v is None]
    return [RankedChild(level=c.level, code=c.code, name=c.name, rank=i + 1, value=v, target=judge(target, v, today))
            for i, (c, v) in enumerate(ordered)]


def _measure_targets(conn: Connection, scope: Scope, user: User, targets: list[Target]) -> dict[int, TargetProgress]:
    """Targets on measures: each measure computed once by its own context, however many targets name it."""
    today = metrics.local_date(conn, datetime.now(UTC))
    standings = {key: MEASURES[key].standing(conn, scope, user) for key in sorted({t.figure for t in targets})}
    return {t.id: _progress(t, standings[t.figure].value,
                            _league(MEASURES[t.figure], standings[t.figure], t, today), today) for t in targets}


def progress(conn: Connection, scope: Scope, user: User, target_id: int | None = None) -> list[TargetProgress]:
    """Every target set on the scope or above it (or only the one asked), earliest deadline first, with its
    standing and league."""
    targets = [t for t in targets_on(conn, scope_path(scope)) if target_id in (None, t.id)]
    on_figures = [t for t in targets if t.figure in FIGURES]
    on_measures = [t for t in targets if t.figure in MEASURES]
    found = {}
    if on_figures:
        found |= _figure_targets(conn, scope, user, on_figures)
    if on_measures:
        found |= _measure_targets(conn, scope, user, on_measures)
    return [found[t.id] for t in targets if t.id in found]
