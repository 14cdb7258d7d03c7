"""Scope figures: set-based SQL over the registry and the current device state."""

from datetime import UTC, datetime

from psycopg import Connection, sql

from api.auth.models import User
from api.metrics.settings import metrics_settings
from api.scopes.access import bounded
from api.scopes.models import (
    Availability,
    ChildAvailability,
    KindFigures,
    Overview,
    Scope,
    ScopeRef,
)
from core.scope import child_key, children_query
from rollups.school_now import ensure_fresh

KINDS = ("board", "recorder", "gateway")


def children(conn: Connection, scope: Scope, user: User) -> list[ScopeRef]:
    """The child scopes the user may see, in code order."""
    if scope.child_level is None:
        return []
    if scope.child_level != "school":
        rows = conn.execute(children_query(scope.level), {"scope_code": scope.code}).fetchall()
    else:
        where, params = bounded(scope.level, user=user)
        query = sql.SQL("SELECT 'school' AS level, s.code, s.name FROM school s WHERE {} ORDER BY s.code").format(where)
        rows = conn.execute(query, {"scope_code": scope.code, **params}).fetchall()
    return [ScopeRef(**r) for r in rows]


def _availability(rows: list[dict]) -> Availability:
    by_kind = []
    for kind in KINDS:
        devices = sum(r["devices"] for r in rows if r["kind"] == kind)
        online = sum(r["online"] for r in rows if r["kind"] == kind)
        by_kind.append(KindFigures(kind=kind, devices=devices, online=online,
                                   online_rate=round(online / devices, 4) if devices else None))
    devices = sum(k.devices for k in by_kind)
    online = sum(k.online for k in by_kind)
    return Availability(devices=devices, online=online,
                        online_rate=round(online / devices, 4) if devices else None, by_kind=by_kind)


def overview(conn: Connection, scope: Scope, user: User) -> Overview:
    """Availability now for the scope and each child: devices, online, online rate by kind."""
    as_of = ensure_fresh(conn, metrics_settings().now_max_age_s) or datetime.now(UTC)
    where, params = bounded(scope.level, user=user)
    key = child_key(scope.level)
    query = sql.SQL("""
        SELECT {key} AS child, n.kind, sum(n.devices) AS devices, sum(n.online) AS online
        FROM school s JOIN school_now n ON n.school_code = s.code
        WHERE {where}
        GROUP BY 1, 2""").format(key=key, where=where)
    rows = conn.execute(query, {"scope_code": scope.code, **params}).fetchall()
    kids = [
        ChildAvailability(**child.model_dump(), availability=_availability([r for r in rows if r["child"] == child.code]))
        for child in children(conn, scope, user)
    ]
    return Overview(scope=scope, as_of=as_of.isoformat(), availability=_availability(rows), children=kids)
