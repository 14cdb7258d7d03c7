"""Glue between the API's scopes and the patrol package: check, call, audit."""

from datetime import UTC, datetime

from psycopg import Connection

from api import audit
from api.auth.models import User
from api.scopes.access import NOT_FOUND, resolve
from patrol import alerts

WRITE_ROLES = {"admin", "manager", "operations"}


def now() -> datetime:
    """The time a request acts at."""
    return datetime.now(UTC)


def visible_alert(conn: Connection, user: User, alert_id: int) -> dict:
    """An alert whose school the user may see; 404 otherwise."""
    alert = alerts.get_alert(conn, alert_id)
    if alert is None:
        raise NOT_FOUND
    resolve(conn, user, "school", alert["school_code"])
    return alert


def visible_order(conn: Connection, user: User, order_id: int) -> dict:
    """A work order whose school the user may see; 404 otherwise."""
    order = conn.execute("SELECT * FROM work_order WHERE id = %s", (order_id,)).fetchone()
    if order is None:
        raise NOT_FOUND
    resolve(conn, user, "school", order["school_code"])
    return order


_SUMMARY = """
SELECT severity, count(*) FILTER (WHERE inhibited_by IS NULL) AS shown,
       count(*) FILTER (WHERE inhibited_by IS NOT NULL) AS inhibited
FROM alert WHERE state IN ('firing', 'acknowledged') AND school_in_scope(%s, %s, school_code)
GROUP BY severity
"""


def summary(conn: Connection, level: str, code: str) -> dict:
    """Open alerts by severity for a scope; the ones suppressed behind a root cause counted apart."""
    rows = {r["severity"]: r for r in conn.execute(_SUMMARY, (level, code))}
    by = {s: rows[s]["shown"] if s in rows else 0 for s in ("critical", "major", "warning", "info")}
    return {"open": sum(by.values()), "by_severity": by,
            "inhibited": sum(r["inhibited"] for r in rows.values()), "as_of": now()}


_GROUPED = """
SELECT a.*, r.title AS rule_title, r.page, s.name AS school_name, d.kind AS device_kind, d.room,
       t.name AS team_name, 0 AS grouped
FROM alert_seen a JOIN patrol_rule r ON r.id = a.rule_id JOIN school s ON s.code = a.school_code
JOIN device d ON d.id = a.device_id LEFT JOIN ops_team t ON t.id = a.team_id
WHERE a.inhibited_by = %(root)s AND a.state = ANY(%(states)s) AND school_in_scope(%(level)s, %(code)s, a.school_code)
ORDER BY CASE a.severity WHEN 'critical' THEN 0 WHEN 'major' THEN 1 WHEN 'warning' THEN 2 ELSE 3 END,
         a.first_seen DESC, a.id
"""

# Open alerts grouped under each of some root alerts, inside a scope.
_GROUPED_COUNTS = """
SELECT inhibited_by AS root, count(*) AS n FROM alert
WHERE inhibited_by = ANY(%(roots)s) AND state <> 'resolved' AND school_in_scope(%(level)s, %(code)s, school_code)
GROUP BY 1
"""
OPEN_STATES = ["pending", "firing", "acknowledged"]


def grouped(conn: Connection, user: User, root: dict, states: list[str] | None) -> list[dict]:
    """The alerts grouped under a root cause (suppressed behind it) that lie inside the user's scope,
    worst and newest first; the open ones unless `states` says otherwise."""
    return conn.execute(_GROUPED, {"root": root["id"], "states": states or OPEN_STATES, "level": user.scope_level,
                                   "code": user.scope_code}).fetchall()


def with_grouped(conn: Connection, level: str, code: str, rows: list[dict]) -> list[dict]:
    """The rows, each with how many open alerts of the scope are grouped under it (0 for most)."""
    counts = {r["root"]: r["n"] for r in conn.execute(
        _GROUPED_COUNTS, {"roots": [r["id"] for r in rows], "level": level, "code": code})} if rows else {}
    return [{**r, "grouped": counts.get(r["id"], 0)} for r in rows]


def audited(conn: Connection, user: User, action: str, target: str, detail: dict | None = None) -> None:
    """Record a patrol write in the audit log."""
    audit.record(conn, user, action, target, detail)
