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


def audited(conn: Connection, user: User, action: str, target: str, detail: dict | None = None) -> None:
    """Record a patrol write in the audit log."""
    audit.record(conn, user, action, target, detail)
