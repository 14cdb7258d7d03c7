"""What people do with alerts: list them by scope, acknowledge, silence, plan maintenance, tune rules.

These are the functions the API's alerts context calls; each takes a connection and
plain values and returns rows as dicts. An alert is read from `alert_seen`, whose last_seen
and count are moved on by the evaluations that saw it since its row was written (sql/037).
"""

from datetime import datetime

from psycopg import Connection
from psycopg.types.json import Jsonb

_LIST = """
SELECT a.*, r.title AS rule_title, r.page, s.name AS school_name, d.kind AS device_kind, d.room,
       t.name AS team_name
FROM alert_seen a JOIN patrol_rule r ON r.id = a.rule_id JOIN school s ON s.code = a.school_code
JOIN device d ON d.id = a.device_id LEFT JOIN ops_team t ON t.id = a.team_id
WHERE school_in_scope(%(level)s, %(code)s, a.school_code)
  AND (%(states)s::text[] IS NULL OR a.state = ANY(%(states)s))
  AND (%(severity)s::text IS NULL OR a.severity = %(severity)s)
  AND (%(rule)s::text IS NULL OR a.rule_id = %(rule)s)
  AND (%(include_inhibited)s OR a.inhibited_by IS NULL)
ORDER BY CASE a.severity WHEN 'critical' THEN 0 WHEN 'major' THEN 1 WHEN 'warning' THEN 2 ELSE 3 END,
         a.first_seen DESC
LIMIT %(limit)s
"""


def list_alerts(conn: Connection, scope_level: str, scope_code: str, *, states: list[str] | None = None,
                severity: str | None = None, rule: str | None = None, include_inhibited: bool = False,
                limit: int = 500) -> list[dict]:
    """Alerts inside a scope, worst and newest first; open ones unless `states` says otherwise."""
    return conn.execute(_LIST, {
        "level": scope_level, "code": scope_code,
        "states": states or ["pending", "firing", "acknowledged"], "severity": severity, "rule": rule,
        "include_inhibited": include_inhibited, "limit": limit}).fetchall()


def alerts_by_school(conn: Connection, scope_level: str, scope_code: str) -> list[dict]:
    """Open, uninhibited alerts grouped per school: one line per school with counts by severity."""
    return conn.execute(
        """SELECT a.school_code, s.name AS school_name, count(*) AS alerts,
                  count(*) FILTER (WHERE a.severity = 'critical') AS critical,
                  count(*) FILTER (WHERE a.severity = 'major') AS major,
                  count(*) FILTER (WHERE a.severity = 'warning') AS warning,
                  (SELECT count(*) FROM alert i WHERE i.school_code = a.school_code AND i.state <> 'resolved'
                     AND i.inhibited_by IS NOT NULL) AS inhibited,
                  min(a.first_seen) AS since
           FROM alert a JOIN school s ON s.code = a.school_code
           WHERE a.state IN ('firing', 'acknowledged') AND a.inhibited_by IS NULL
             AND school_in_scope(%s, %s, a.school_code)
           GROUP BY a.school_code, s.name ORDER BY critical DESC, major DESC, alerts DESC""",
        (scope_level, scope_code)).fetchall()


def get_alert(conn: Connection, alert_id: int) -> dict | None:
    """One alert with the alerts it suppresses (its incident) and its notifications."""
    row = conn.execute("SELECT a.*, r.title AS rule_title FROM alert_seen a JOIN patrol_rule r ON r.id = a.rule_id "
                       "WHERE a.id = %s", (alert_id,)).fetchone()
    if row is None:
        return None
    row["suppressed"] = conn.execute(
        "SELECT id, rule_id, device_id, state, summary FROM alert WHERE inhibited_by = %s ORDER BY id",
        (alert_id,)).fetchall()
    row["notifications"] = conn.execute(
        "SELECT sent_at, kind, channel, target, status, error FROM notification WHERE %s = ANY(alert_ids) "
        "ORDER BY sent_at", (alert_id,)).fetchall()
    return row


def acknowledge(conn: Connection, alert_id: int, username: str, now: datetime) -> dict | None:
    """Acknowledge a firing alert (and the alerts it suppresses); None when it is not firing."""
    with conn.transaction():
        row = conn.execute(
            """UPDATE alert SET state = 'acknowledged', acked_at = %(now)s, acked_by = %(user)s
               WHERE id = %(id)s AND state = 'firing' RETURNING id""",
            {"id": alert_id, "user": username, "now": now}).fetchone()
        if row is None:
            return None
        conn.execute(
            """UPDATE alert SET state = 'acknowledged', acked_at = %(now)s, acked_by = %(user)s
               WHERE inhibited_by = %(id)s AND state = 'firing'""",
            {"id": alert_id, "user": username, "now": now})
        return conn.execute("SELECT * FROM alert_seen WHERE id = %s", (alert_id,)).fetchone()


def create_silence(conn: Connection, *, ends_at: datetime, reason: str, created_by: str,
                   starts_at: datetime | None = None, rule_id: str | None = None, scope_level: str | None = None,
                   scope_code: str | None = None, device_id: str | None = None) -> int:
    """Mute matching alerts until `ends_at`; return the silence's id."""
    if not reason.strip():
        raise ValueError("a silence needs a reason")
    row = conn.execute(
        """INSERT INTO silence (rule_id, scope_level, scope_code, device_id, starts_at, ends_at, reason, created_by)
           VALUES (%s, %s, %s, %s, coalesce(%s, now()), %s, %s, %s) RETURNING id""",
        (rule_id, scope_level, scope_code, device_id, starts_at, ends_at, reason, created_by)).fetchone()
    return row["id"]


def expire_silence(conn: Connection, silence_id: int, now: datetime) -> bool:
    """End a silence now; True when it was still running."""
    cur = conn.execute("UPDATE silence SET ends_at = %s WHERE id = %s AND ends_at > %s AND starts_at < %s",
                       (now, silence_id, now, now))
    return cur.rowcount == 1


def list_silences(conn: Connection, now: datetime) -> list[dict]:
    """Silences running or planned at `now`."""
    return conn.execute("SELECT * FROM silence WHERE ends_at > %s ORDER BY ends_at", (now,)).fetchall()


def create_maintenance(conn: Connection, scope_level: str, scope_code: str, starts_at: datetime,
                       ends_at: datetime, reason: str, created_by: str = "system") -> int:
    """Plan a maintenance window over a scope or a device ('device' level); return its id."""
    row = conn.execute(
        """INSERT INTO maintenance_window (scope_level, scope_code, starts_at, ends_at, reason, created_by)
           VALUES (%s, %s, %s, %s, %s, %s) RETURNING id""",
        (scope_level, scope_code, starts_at, ends_at, reason, created_by)).fetchone()
    return row["id"]


def list_rules(conn: Connection) -> list[dict]:
    """Every rule with its defaults and its overrides."""
    rules = conn.execute("SELECT * FROM patrol_rule ORDER BY id").fetchall()
    overrides = conn.execute("SELECT * FROM patrol_rule_override ORDER BY rule_id, scope_level").fetchall()
    for r in rules:
        r["overrides"] = [o for o in overrides if o["rule_id"] == r["id"]]
    return rules


def update_rule(conn: Connection, rule_id: str, *, params: dict | None = None, severity: str | None = None,
                for_s: int | None = None, enabled: bool | None = None) -> dict | None:
    """Change a rule's defaults (params are merged key by key); None for an unknown rule."""
    return conn.execute(
        """UPDATE patrol_rule SET params = params || coalesce(%s, '{}'::jsonb), severity = coalesce(%s, severity),
                  for_s = coalesce(%s, for_s), enabled = coalesce(%s, enabled)
           WHERE id = %s RETURNING *""",
        (Jsonb(params) if params else None, severity, for_s, enabled, rule_id)).fetchone()


def set_override(conn: Connection, rule_id: str, scope_level: str, scope_code: str, params: dict) -> None:
    """Set a rule's params for a scope (an empty dict removes the override)."""
    if not params:
        conn.execute("DELETE FROM patrol_rule_override WHERE rule_id = %s AND scope_level = %s AND scope_code = %s",
                     (rule_id, scope_level, scope_code))
        return
    conn.execute(
        """INSERT INTO patrol_rule_override (rule_id, scope_level, scope_code, params) VALUES (%s, %s, %s, %s)
           ON CONFLICT (rule_id, scope_level, scope_code) DO UPDATE SET params = EXCLUDED.params""",
        (rule_id, scope_level, scope_code, Jsonb(params)))
