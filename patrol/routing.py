"""Who gets an alert: the ops team owning the smallest scope that contains its school.

Escalation walks outward: at escalation level N an alert belongs to the (N+1)-th most
specific team containing the school (school, community, county, city, province).
"""

from datetime import datetime

from psycopg import Connection

# Each waiting school's teams, the most specific first (level 0 owns the school, level 1 is the
# next one up…), for the schools of a relation `waiting` (school_code) the statement defines.
# Set-based: each team's schools once (a province team's are all of them), not every team's
# scope tested for every alert.
TEAM_LADDER = """
SELECT x.school_code, t.id AS team_id,
       row_number() OVER (PARTITION BY x.school_code ORDER BY patrol_scope_rank(t.scope_level) DESC) - 1 AS level
FROM ops_team t CROSS JOIN LATERAL scope_schools(t.scope_level, t.scope_code) AS x
WHERE x.school_code IN (SELECT school_code FROM waiting)
"""

# The team at the alert's escalation level; alerts without one only.
ROUTE_NEW = """
WITH waiting AS (
    SELECT id, school_code, escalation_level FROM alert WHERE state <> 'resolved' AND team_id IS NULL
), ladder AS (""" + TEAM_LADDER + """)
UPDATE alert a SET team_id = l.team_id
FROM waiting w JOIN ladder l ON l.school_code = w.school_code AND l.level = w.escalation_level
WHERE a.id = w.id
"""  # noqa: S608 -- two constants of this module, no input

# Unacknowledged past the deadline of their level, with a team above: one level up.
_ESCALATE = """
WITH due AS (
    SELECT a.id, nxt.id AS team_id
    FROM alert a
    CROSS JOIN LATERAL (
        SELECT t.id FROM ops_team t WHERE school_in_scope(t.scope_level, t.scope_code, a.school_code)
        ORDER BY patrol_scope_rank(t.scope_level) DESC OFFSET a.escalation_level + 1 LIMIT 1) AS nxt
    WHERE a.state = 'firing' AND a.inhibited_by IS NULL AND a.silence_id IS NULL
      AND a.notified_at IS NOT NULL AND a.escalation_level < %(max_level)s
      AND coalesce(a.escalated_at, a.fired_at) <= %(now)s - make_interval(secs => %(after_s)s)
)
UPDATE alert a SET escalation_level = a.escalation_level + 1, escalated_at = %(now)s, team_id = due.team_id,
                   reminded_at = NULL
FROM due WHERE a.id = due.id
RETURNING a.id
"""


def teams_for_school(conn: Connection, school_code: str) -> list[dict]:
    """The teams whose scope contains the school, most specific first."""
    return conn.execute(
        """SELECT * FROM ops_team WHERE school_in_scope(scope_level, scope_code, %s)
           ORDER BY patrol_scope_rank(scope_level) DESC""", (school_code,)).fetchall()


def create_team(conn: Connection, name: str, scope_level: str, scope_code: str, *, webhook_url: str | None = None,
                email: str | None = None, mqtt_topic: str | None = None) -> int:
    """Register an ops team owning a scope; return its id."""
    row = conn.execute(
        """INSERT INTO ops_team (name, scope_level, scope_code, webhook_url, email, mqtt_topic)
           VALUES (%s, %s, %s, %s, %s, %s) RETURNING id""",
        (name, scope_level, scope_code, webhook_url, email, mqtt_topic)).fetchone()
    return row["id"]


def escalate_overdue(conn: Connection, now: datetime, after_s: int, max_level: int) -> list[int]:
    """Move unacknowledged alerts past their deadline to the next team up; return their ids."""
    rows = conn.execute(_ESCALATE, {"now": now, "after_s": after_s, "max_level": max_level}).fetchall()
    return [r["id"] for r in rows]
