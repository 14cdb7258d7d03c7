"""Work orders (工单): someone fixing something, from an alert to an accepted repair; and response times.

open → in_progress → done → accepted (or rejected, back to in_progress); open or
in_progress → cancelled. Opening an order from a firing alert acknowledges the alert.
"""

from datetime import datetime

from psycopg import Connection, sql

from core.scope import SCHOOL_COLUMN
from patrol.alerts import acknowledge

# Allowed moves: status -> statuses it may go to.
TRANSITIONS = {
    "open": {"in_progress", "done", "cancelled"},
    "in_progress": {"done", "cancelled"},
    "done": {"accepted", "rejected"},
    "rejected": {"in_progress", "cancelled"},
    "accepted": set(),
    "cancelled": set(),
}


class WorkOrderError(ValueError):
    """A work order cannot make the requested move."""


def open_work_order(conn: Connection, alert_id: int, created_by: str, now: datetime, *,
                    assignee: str | None = None, deadline: datetime | None = None,
                    title: str | None = None) -> dict:
    """Open a work order for an alert (acknowledging it if firing); the existing open one if there is one."""
    with conn.transaction():
        existing = conn.execute("SELECT * FROM work_order WHERE alert_id = %s AND status IN "
                                "('open', 'in_progress', 'done')", (alert_id,)).fetchone()
        if existing:
            return existing
        alert = conn.execute("SELECT * FROM alert WHERE id = %s", (alert_id,)).fetchone()
        if alert is None:
            raise WorkOrderError(f"no alert {alert_id}")
        acknowledge(conn, alert_id, created_by, now)
        return conn.execute(
            """INSERT INTO work_order (alert_id, school_code, device_id, title, assignee, created_by, created_at,
                                       deadline, updated_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *""",
            (alert_id, alert["school_code"], alert["device_id"], title or alert["summary"], assignee,
             created_by, now, deadline, now)).fetchone()


def update_work_order(conn: Connection, order_id: int, status: str, username: str, now: datetime, *,
                      note: str | None = None, assignee: str | None = None) -> dict:
    """Move a work order to `status` (resolution note for done, acceptance note for accepted/rejected)."""
    with conn.transaction():
        order = conn.execute("SELECT * FROM work_order WHERE id = %s FOR UPDATE", (order_id,)).fetchone()
        if order is None:
            raise WorkOrderError(f"no work order {order_id}")
        if status not in TRANSITIONS.get(order["status"], set()):
            raise WorkOrderError(f"work order {order_id} cannot go from {order['status']} to {status}")
        if status == "done" and not (note or "").strip():
            raise WorkOrderError("a finished work order needs a resolution")
        return conn.execute(
            """UPDATE work_order SET status = %(status)s, updated_at = %(now)s,
                   assignee = coalesce(%(assignee)s, assignee),
                   started_at = CASE WHEN %(status)s = 'in_progress' THEN coalesce(started_at, %(now)s)
                                     ELSE started_at END,
                   done_at = CASE WHEN %(status)s = 'done' THEN %(now)s ELSE done_at END,
                   resolution = CASE WHEN %(status)s = 'done' THEN %(note)s ELSE resolution END,
                   accepted_at = CASE WHEN %(status)s IN ('accepted', 'rejected') THEN %(now)s
                                      ELSE accepted_at END,
                   accepted_by = CASE WHEN %(status)s IN ('accepted', 'rejected') THEN %(user)s
                                      ELSE accepted_by END,
                   acceptance_note = CASE WHEN %(status)s IN ('accepted', 'rejected') THEN %(note)s
                                          ELSE acceptance_note END
               WHERE id = %(id)s RETURNING *""",
            {"status": status, "now": now, "assignee": assignee, "note": note, "user": username,
             "id": order_id}).fetchone()


def list_work_orders(conn: Connection, scope_level: str, scope_code: str, *, statuses: list[str] | None = None,
                     now: datetime | None = None) -> list[dict]:
    """Work orders inside a scope, newest first, with whether each is overdue at `now` (by default
    the database's clock)."""
    return conn.execute(
        """SELECT w.*, s.name AS school_name,
                  (w.deadline IS NOT NULL AND w.status IN ('open', 'in_progress')
                   AND w.deadline < coalesce(%(now)s::timestamptz, now())) AS overdue
           FROM work_order w JOIN school s ON s.code = w.school_code
           WHERE school_in_scope(%(level)s, %(code)s, w.school_code)
             AND (%(statuses)s::text[] IS NULL OR w.status = ANY(%(statuses)s))
           ORDER BY w.created_at DESC""",
        {"level": scope_level, "code": scope_code, "statuses": statuses, "now": now}).fetchall()


_RESPONSE = """
SELECT {group} AS scope_code,
       count(*) AS fired,
       count(a.acked_at) AS acknowledged,
       count(a.resolved_at) AS resolved,
       avg(extract(epoch FROM a.acked_at - a.fired_at))::float8 AS mtta_s,
       avg(extract(epoch FROM a.resolved_at - a.fired_at))::float8 AS mttr_s
FROM alert a JOIN school s ON s.code = a.school_code
WHERE a.fired_at IS NOT NULL AND a.fired_at >= %(since)s AND a.fired_at < %(until)s
  AND a.inhibited_by IS NULL AND school_in_scope(%(level)s, %(code)s, a.school_code)
GROUP BY 1 ORDER BY 1
"""


def response_times(conn: Connection, scope_level: str, scope_code: str, since: datetime, until: datetime,
                   by: str | None = None) -> list[dict]:
    """Mean time to acknowledge and to resolve (seconds) of alerts fired in [since, until), per sub-scope `by`.

    `by` is an administrative level, or the scope's own (one line: a community's schools have no
    one community column to group by).
    """
    by = by or scope_level
    if by in SCHOOL_COLUMN:
        group = sql.Identifier("s", SCHOOL_COLUMN[by])
    elif by == scope_level:
        group = sql.SQL("%(code)s::text")
    else:
        raise ValueError(f"unknown scope level {by!r}")
    return conn.execute(sql.SQL(_RESPONSE).format(group=group), {
        "since": since, "until": until, "level": scope_level, "code": scope_code}).fetchall()
