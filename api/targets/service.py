"""Targets: which one applies to a scope, how a value stands against it, who set what.

The target table is the one source of every bar the cockpit draws: the figures' targets,
the 教联体 coverage targets and the 差异系数 bars are all its rows, attached here to the
answers of api/metrics, api/communities and api/equity.
"""

from datetime import UTC, date, datetime

from fastapi import HTTPException, status
from psycopg import Connection, sql

from api import audit
from api.auth.models import User
from api.communities.models import Coverage
from api.equity.models import Equity
from api.metrics.catalogue import FIGURES
from api.metrics.models import Figures, TargetStatus
from api.metrics.service import local_date
from api.scopes.access import NOT_FOUND, resolve
from api.scopes.models import Scope, ScopeRef
from api.targets.measures import MEASURES, TARGETABLE
from api.targets.models import Target, Targetable, TargetIn
from api.targets.paths import child_path, county_paths, scope_path
from core.period import Period
from core.scope import LEVELS

SETTER_ROLES = {"admin", "manager"}
COVERAGE = "community_coverage"

# Targets with the name of their scope, from the table of its level.
_SELECT = sql.SQL("SELECT t.*, coalesce({}) AS scope_name FROM target t {} ").format(
    sql.SQL(", ").join(sql.Identifier(level, "name") for level in LEVELS),
    sql.SQL(" ").join(sql.SQL("LEFT JOIN {} ON t.scope_level = {} AND {} = t.scope_code").format(
        sql.Identifier(level), sql.Literal(level), sql.Identifier(level, "code")) for level in LEVELS))


def _target(row: dict) -> Target:
    return Target(id=row["id"], figure=row["figure"], comparator=row["comparator"], value=row["value"],
                  deadline=row["deadline"], note=row["note"], set_by=row["set_by"], set_at=row["set_at"],
                  set_on=ScopeRef(level=row["scope_level"], code=row["scope_code"], name=row["scope_name"] or ""))


def targets_on(conn: Connection, refs: list[ScopeRef]) -> list[Target]:
    """Targets set on any of these scopes, latest deadline last."""
    if not refs:
        return []
    keys = [f"{r.level}:{r.code}" for r in refs]
    rows = conn.execute(_SELECT + sql.SQL("WHERE t.scope_level || ':' || t.scope_code = ANY(%s) ORDER BY t.deadline"),
                        (keys,)).fetchall()
    return [_target(r) for r in rows]


def in_force(targets: list[Target], path: list[ScopeRef], key: str) -> list[Target]:
    """Every target for a key set on the nearest scope of `path` (from its end) that has any, by deadline:
    a policy can set several stages, such as 70 % by one year's end and 80 % by the next."""
    for ref in reversed(path):
        mine = [t for t in targets if t.figure == key and (t.set_on.level, t.set_on.code) == (ref.level, ref.code)]
        if mine:
            return mine
    return []


def applicable(targets: list[Target], path: list[ScopeRef], figure: str, today: date) -> Target | None:
    """The target for a figure set nearest above (or on) the last scope of `path`, still running or latest."""
    mine = in_force(targets, path, figure)
    running = [t for t in mine if t.deadline >= today]
    return running[0] if running else (mine[-1] if mine else None)


def judge(target: Target, value: float | None, today: date) -> TargetStatus:
    """Where a value stands: met, behind (deadline ahead), missed (deadline passed) or no data."""
    if value is None:
        gap, state = None, "no_data"
    else:
        gap = round(target.value - value if target.comparator == ">=" else value - target.value, 4)
        state = "met" if gap <= 0 else ("missed" if target.deadline < today else "behind")
    return TargetStatus(target_id=target.id, comparator=target.comparator, value=target.value,
                        deadline=target.deadline, set_on=target.set_on, gap=gap, status=state)


def judging_day(conn: Connection, period: Period | None = None) -> date:
    """The day targets are judged on: today, or the last day begun of the period asked about."""
    today = local_date(conn, datetime.now(UTC))
    return today if period is None or period.is_now else min(period.elapsed_last, today)


def attach(conn: Connection, result: Figures, today: date) -> Figures:
    """Give every figure of the scope and its children the target that applies to it."""
    scope = result.scope
    path = scope_path(scope)
    targets = targets_on(conn, path + [ScopeRef(**c.model_dump(include={"level", "code", "name"}))
                                       for c in result.children])
    if not targets:
        return result
    for key, fv in result.figures.items():
        if t := applicable(targets, path, key, today):
            fv.target = judge(t, fv.value, today)
    for child in result.children:
        child_path = path + [ScopeRef(level=child.level, code=child.code, name=child.name)]
        for key, fv in child.figures.items():
            if t := applicable(targets, child_path, key, today):
                fv.target = judge(t, fv.value, today)
    return result


def attach_coverage(conn: Connection, answer: Coverage, today: date) -> Coverage:
    """Give the scope's coverage and each child's the community_coverage targets in force there, judged."""
    path = scope_path(answer.scope)
    targets = targets_on(conn, path + list(answer.children))
    answer.figures.targets = [judge(t, answer.figures.coverage_rate, today) for t in in_force(targets, path, COVERAGE)]
    for child in answer.children:
        child.figures.targets = [judge(t, child.figures.coverage_rate, today)
                                 for t in in_force(targets, child_path(path, child), COVERAGE)]
    return answer


def attach_equity(conn: Connection, answer: Equity, today: date) -> Equity:
    """Give each county group the 差异系数 target that applies to its county as its bar, and judge it
    (no data when the group has too few schools to judge); no target, no bar."""
    paths = county_paths(conn, [c.code for c in answer.counties])
    refs = {(r.level, r.code): r for path in paths.values() for r in path}
    targets = targets_on(conn, list(refs.values()))
    for county in answer.counties:
        for group in county.groups:
            target = applicable(targets, paths.get(county.code, []), f"equity_cv_{group.group}", today)
            if target is None:
                continue
            standing = judge(target, group.composite_cv if group.judged else None, today)
            group.bar, group.target = target.value, standing
            group.passes = None if standing.gap is None else standing.gap <= 0
    return answer


def targetable() -> list[Targetable]:
    """Every key a target can be set on: the catalogue's figures, then the measures."""
    figures = [Targetable(key=f.key, kind="figure", zh=f.zh, en=f.en, unit=f.unit, better=f.better,
                          description=f.description) for f in FIGURES.values()]
    measures = [Targetable(key=m.key, kind="measure", zh=m.zh, en=m.en, unit=m.unit, better=m.better,
                           description=m.description) for m in MEASURES.values()]
    return figures + measures


def _dispatched_from_above(user: User, level: str, code: str, action: str) -> None:
    """Targets are dispatched downwards: a scope's own targets are set and withdrawn by the level above
    (the province sets its own, an admin any); 403 otherwise."""
    own = (level, code) == (user.scope_level, user.scope_code)
    if own and level != "province" and user.role != "admin":
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"targets are {action} by the level above")


def create(conn: Connection, user: User, scope: Scope, body: TargetIn) -> Target:
    """Set a target on a scope the user manages (their role checked by the route); audited."""
    if body.figure not in TARGETABLE:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"unknown figure or measure {body.figure!r}")
    measure = MEASURES.get(body.figure)
    if measure is not None and body.comparator != measure.comparator:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"{body.figure}: {measure.better} is better, so its target takes {measure.comparator}")
    _dispatched_from_above(user, scope.level, scope.code, "set")
    row = conn.execute(
        "INSERT INTO target (scope_level, scope_code, figure, comparator, value, deadline, note, set_by) "
        "VALUES (%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (scope_level, scope_code, figure, deadline) DO UPDATE "
        "SET comparator = EXCLUDED.comparator, value = EXCLUDED.value, note = EXCLUDED.note, "
        "set_by = EXCLUDED.set_by, set_at = now() RETURNING id",
        (scope.level, scope.code, body.figure, body.comparator, body.value, body.deadline, body.note, user.username),
    ).fetchone()
    audit.record(conn, user, "target.set", f"{scope.level}:{scope.code}", body.model_dump(mode="json"))
    return get(conn, user, row["id"])


def get(conn: Connection, user: User, target_id: int) -> Target:
    """A target whose scope the user may see; 404 otherwise."""
    row = conn.execute(_SELECT + sql.SQL("WHERE t.id = %s"), (target_id,)).fetchone()
    if row is None:
        raise NOT_FOUND
    target = _target(row)
    try:
        resolve(conn, user, target.set_on.level, target.set_on.code)
    except HTTPException:
        # A target set above the user's scope applies to them but belongs to the level above.
        if not _applies_below(conn, user, target):
            raise
    return target


def _applies_below(conn: Connection, user: User, target: Target) -> bool:
    own = resolve(conn, user, user.scope_level, user.scope_code)
    return any((p.level, p.code) == (target.set_on.level, target.set_on.code) for p in own.parents)


def delete(conn: Connection, user: User, target_id: int) -> None:
    """Withdraw a target set on a scope the user manages (their role checked by the route); audited."""
    target = get(conn, user, target_id)
    resolve(conn, user, target.set_on.level, target.set_on.code)  # only within the user's own scope
    _dispatched_from_above(user, target.set_on.level, target.set_on.code, "withdrawn")
    conn.execute("DELETE FROM target WHERE id = %s", (target_id,))
    audit.record(conn, user, "target.delete", f"{target.set_on.level}:{target.set_on.code}",
                 target.model_dump(mode="json"))
