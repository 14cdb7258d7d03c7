"""Targets: which one applies to a scope, how a value stands against it, who set what."""

from datetime import date

from fastapi import HTTPException, status
from psycopg import Connection, sql

from api import audit
from api.auth.models import User
from api.metrics.catalogue import FIGURES
from api.metrics.models import Figures, TargetStatus
from api.scopes.access import NOT_FOUND, resolve
from api.scopes.models import Scope, ScopeRef
from api.targets.models import Target, TargetIn
from core.scope import LEVELS

SETTER_ROLES = {"admin", "manager"}

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


def applicable(targets: list[Target], path: list[ScopeRef], figure: str, today: date) -> Target | None:
    """The target for a figure set nearest above (or on) the last scope of `path`, still running or latest."""
    for ref in reversed(path):
        mine = [t for t in targets if t.figure == figure and (t.set_on.level, t.set_on.code) == (ref.level, ref.code)]
        if mine:
            running = [t for t in mine if t.deadline >= today]
            return running[0] if running else mine[-1]
    return None


def judge(target: Target, value: float | None, today: date) -> TargetStatus:
    """Where a value stands: met, behind (deadline ahead), missed (deadline passed) or no data."""
    if value is None:
        gap, state = None, "no_data"
    else:
        gap = round(target.value - value if target.comparator == ">=" else value - target.value, 4)
        state = "met" if gap <= 0 else ("missed" if target.deadline < today else "behind")
    return TargetStatus(target_id=target.id, comparator=target.comparator, value=target.value,
                        deadline=target.deadline, set_on=target.set_on, gap=gap, status=state)


def attach(conn: Connection, result: Figures, today: date) -> Figures:
    """Give every figure of the scope and its children the target that applies to it."""
    scope = result.scope
    path = [*scope.parents, ScopeRef(level=scope.level, code=scope.code, name=scope.name)]
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


def create(conn: Connection, user: User, scope: Scope, body: TargetIn) -> Target:
    """Set a target on a scope the user manages (their role checked by the route); audited."""
    if body.figure not in FIGURES:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"unknown figure {body.figure!r}")
    own = (scope.level, scope.code) == (user.scope_level, user.scope_code)
    if own and scope.level != "province" and user.role != "admin":
        # Targets are dispatched downwards; only the top level sets its own.
        raise HTTPException(status.HTTP_403_FORBIDDEN, "targets are set by the level above")
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
    conn.execute("DELETE FROM target WHERE id = %s", (target_id,))
    audit.record(conn, user, "target.delete", f"{target.set_on.level}:{target.set_on.code}",
                 target.model_dump(mode="json"))
