"""One patrol cycle: evaluate the due rules set-based, then move every alert along its lifecycle.

Conditions land in a temporary `patrol_hit` table; a handful of statements then open
(pending) alerts, fire those true for their for-duration, drop pending ones that
cleared, resolve fired ones that cleared, link alerts to their root cause (inhibition),
mark silenced ones and route new ones to a team. Outside a rule's hours and inside a
maintenance window nothing new opens and nothing fires, but alerts still resolve
when their condition clears. The clock is a parameter so tests (and replays) choose it.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from psycopg import Connection, sql

from core import device_state
from core.calendar import LESSON_PERIODS, SCHOOL_OPENS, SchoolCalendar
from patrol.routing import ROUTE_NEW
from patrol.rules import CHECKS, Check, checks_for

_HIT_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS patrol_hit (
    rule_id text NOT NULL, device_id text NOT NULL, school_code char(10) NOT NULL,
    detail jsonb NOT NULL, since timestamptz, severity text, counts boolean NOT NULL DEFAULT true,
    window_start timestamptz
) ON COMMIT DELETE ROWS
"""

# Keep a hit when its rule counts now, or when it keeps an open alert from resolving.
_COLLECT = """
INSERT INTO patrol_hit (rule_id, device_id, school_code, detail, since, severity)
SELECT c.* FROM ({check}) AS c (rule_id, device_id, school_code, detail, since, severity)
WHERE c.rule_id = ANY(%(due)s)
  AND (c.rule_id = ANY(%(active)s)
       OR EXISTS (SELECT 1 FROM alert a WHERE a.rule_id = c.rule_id AND a.device_id = c.device_id
                  AND a.state <> 'resolved'))
"""

_SCOPE_AND_WINDOWS = ("""
DELETE FROM patrol_hit h USING patrol_school_params sp
WHERE sp.rule_id = h.rule_id AND sp.school_code = h.school_code AND (sp.params ->> 'enabled')::boolean IS false
""", """
UPDATE patrol_hit h SET counts = w.active, window_start = w.window_start
FROM unnest(%(rules)s::text[], %(actives)s::boolean[], %(starts)s::timestamptz[]) AS w(rule_id, active, window_start)
WHERE w.rule_id = h.rule_id
""", """
UPDATE patrol_hit h SET counts = false
WHERE counts AND EXISTS (
    SELECT 1 FROM maintenance_window m
    WHERE m.starts_at <= %(now)s AND m.ends_at > %(now)s
      AND ((m.scope_level = 'device' AND m.scope_code = h.device_id)
           OR (m.scope_level <> 'device' AND school_in_scope(m.scope_level, m.scope_code, h.school_code))))
""")

_OPEN = """
INSERT INTO alert AS a (rule_id, device_id, school_code, state, severity, summary, detail, first_seen,
                        last_seen, count)
SELECT h.rule_id, h.device_id, h.school_code, 'pending', coalesce(h.severity, r.severity),
       r.title || '：' || s.name || ' ' || d.room, h.detail,
       least(%(now)s, greatest(coalesce(h.since, %(now)s), h.window_start)), %(now)s, 1
FROM patrol_hit h JOIN patrol_rule r ON r.id = h.rule_id
JOIN device d ON d.id = h.device_id JOIN school s ON s.code = h.school_code
WHERE h.counts
ON CONFLICT (rule_id, device_id) WHERE state <> 'resolved' DO UPDATE SET
    last_seen = EXCLUDED.last_seen, count = a.count + 1, detail = EXCLUDED.detail, severity = EXCLUDED.severity
"""

_CLEAR = ("""
DELETE FROM alert a
WHERE a.state = 'pending' AND a.rule_id = ANY(%(due)s)
  AND NOT EXISTS (SELECT 1 FROM patrol_hit h WHERE h.rule_id = a.rule_id AND h.device_id = a.device_id AND h.counts)
""", """
UPDATE alert a SET state = 'resolved', resolved_at = %(now)s, resolution = 'condition cleared'
WHERE a.state IN ('firing', 'acknowledged') AND a.rule_id = ANY(%(due)s)
  AND NOT EXISTS (SELECT 1 FROM patrol_hit h WHERE h.rule_id = a.rule_id AND h.device_id = a.device_id)
""", """
UPDATE alert a SET state = 'resolved', resolved_at = %(now)s, resolution = 'rule disabled'
FROM patrol_rule r WHERE r.id = a.rule_id AND NOT r.enabled AND a.state <> 'resolved'
""", """
DELETE FROM alert WHERE state = 'resolved' AND fired_at IS NULL
""")

_FIRE = """
UPDATE alert a SET state = 'firing', fired_at = %(now)s
WHERE a.id IN (
    SELECT a2.id FROM alert a2 JOIN patrol_rule r ON r.id = a2.rule_id
    LEFT JOIN patrol_school_params sp ON sp.rule_id = a2.rule_id AND sp.school_code = a2.school_code
    WHERE a2.state = 'pending'
      AND a2.first_seen + make_interval(secs => coalesce((sp.params ->> 'for_s')::int, r.for_s)) <= %(now)s)
"""

_INHIBIT = """
UPDATE alert a SET inhibited_by = x.source_id
FROM (
    SELECT t.id, coalesce(
        (SELECT s.id FROM patrol_inhibition i JOIN alert s ON s.rule_id = i.source_rule
         WHERE i.target_rule = t.rule_id AND i.same = 'school' AND s.school_code = t.school_code
           AND s.state <> 'resolved' AND s.id <> t.id ORDER BY s.id LIMIT 1),
        (SELECT s.id FROM patrol_inhibition i JOIN alert s ON s.rule_id = i.source_rule
         WHERE i.target_rule = t.rule_id AND i.same = 'device' AND s.device_id = t.device_id
           AND s.state <> 'resolved' AND s.id <> t.id ORDER BY s.id LIMIT 1)) AS source_id
    FROM alert t WHERE t.state <> 'resolved') AS x
WHERE a.id = x.id AND a.inhibited_by IS DISTINCT FROM x.source_id
"""

_SILENCE = """
UPDATE alert a SET silence_id = x.silence_id
FROM (
    SELECT t.id, (SELECT s.id FROM silence s
                  WHERE s.starts_at <= %(now)s AND s.ends_at > %(now)s
                    AND (s.rule_id IS NULL OR s.rule_id = t.rule_id)
                    AND (s.device_id IS NULL OR s.device_id = t.device_id)
                    AND (s.scope_level IS NULL OR school_in_scope(s.scope_level, s.scope_code, t.school_code))
                  ORDER BY s.ends_at DESC LIMIT 1) AS silence_id
    FROM alert t WHERE t.state <> 'resolved') AS x
WHERE a.id = x.id AND a.silence_id IS DISTINCT FROM x.silence_id
"""


@dataclass(frozen=True)
class Clock:
    """What the calendar says about one moment, computed once per cycle."""

    now: datetime
    today: date
    local_time: object
    school_day: bool
    opened_at: datetime | None  # today's opening when in school hours
    lesson_started_at: datetime | None  # the running lesson period's start, if any
    recent_school_days: list[date] = field(default_factory=list)

    @classmethod
    def at(cls, now: datetime, calendar: SchoolCalendar) -> "Clock":
        """The calendar's view of `now`."""
        local = calendar.local(now)
        today = local.date()
        opened = datetime.combine(today, SCHOOL_OPENS, calendar.tz) if calendar.in_school_hours(now) else None
        period = calendar.lesson_period(now)
        lesson = datetime.combine(today, LESSON_PERIODS[period][0], calendar.tz) if period is not None else None
        days, day = [], today
        while len(days) < 60 and day > today - timedelta(days=200):
            day -= timedelta(days=1)
            if calendar.is_school_day(day):
                days.append(day)
        return cls(now, today, local.time().replace(tzinfo=None), calendar.is_school_day(today),
                   opened, lesson, days)

    def window(self, active_in: str) -> tuple[bool, datetime | None]:
        """Whether a rule with this `active_in` counts now, and since when it has counted today."""
        if active_in == "school_hours":
            return self.opened_at is not None, self.opened_at
        if active_in == "lessons":
            return self.lesson_started_at is not None, self.lesson_started_at
        return True, None


@dataclass
class CycleResult:
    """What one cycle evaluated and changed."""

    rules: list[str]
    hits: int
    open_alerts: int
    seconds: float = 0.0


def due_rules(conn: Connection, now: datetime) -> list[dict]:
    """The enabled rules whose cadence says they are due at `now`."""
    return conn.execute(
        """SELECT id, active_in, params FROM patrol_rule
           WHERE enabled AND (every_s = 0 OR last_evaluated_at IS NULL
                              OR last_evaluated_at <= %s - make_interval(secs => every_s))
           ORDER BY id""", (now,)).fetchall()


def rule_defaults(conn: Connection) -> dict:
    """Every rule's default params, by rule id."""
    return {r["id"]: r["params"] for r in conn.execute("SELECT id, params FROM patrol_rule").fetchall()}


def _query_params(clock: Clock, tz: str, defaults: dict) -> dict:
    from psycopg.types.json import Jsonb

    return {"now": clock.now, "tz": tz, "today": clock.today, "local_time": clock.local_time,
            "school_day": clock.school_day, "recent_school_days": clock.recent_school_days,
            "defaults": Jsonb(defaults)}


def collect(conn: Connection, checks: list[Check], params: dict) -> None:
    """Run the checks into patrol_hit, keeping the rows the cycle needs."""
    for check in checks:
        conn.execute(sql.SQL(_COLLECT).format(check=sql.SQL(check.sql)), params)


def run_cycle(conn: Connection, now: datetime, calendar: SchoolCalendar, tz: str | None = None,
              *, only: set[str] | None = None) -> CycleResult:
    """Evaluate the due rules (or `only` these) at `now` and update every alert, in one transaction;
    days in `tz`, by default the calendar's zone."""
    tz = tz or calendar.tz.key
    clock = Clock.at(now, calendar)
    with conn.transaction():
        rules = [r for r in due_rules(conn, now) if only is None or r["id"] in only]
        due = [r["id"] for r in rules]
        windows = {r["id"]: clock.window(r["active_in"]) for r in rules}
        active = [rule for rule, (on, _) in windows.items() if on]
        conn.execute(_HIT_TABLE)
        conn.execute("DELETE FROM patrol_hit")
        params = {**_query_params(clock, tz, rule_defaults(conn)), "due": due, "active": active}
        collect(conn, checks_for(set(due)), params)
        window_params = {"now": now, "rules": list(windows), "actives": [w[0] for w in windows.values()],
                         "starts": [w[1] for w in windows.values()]}
        for statement in _SCOPE_AND_WINDOWS:
            conn.execute(statement, window_params)
        hits = conn.execute("SELECT count(*) AS n FROM patrol_hit").fetchone()["n"]
        conn.execute(_OPEN, {"now": now})
        for statement in _CLEAR:
            conn.execute(statement, {"now": now, "due": due})
        conn.execute(_FIRE, {"now": now})
        settle(conn, now)
        conn.execute("UPDATE patrol_rule SET last_evaluated_at = %s WHERE id = ANY(%s)", (now, due))
        n_open = conn.execute("SELECT count(*) AS n FROM alert WHERE state <> 'resolved'").fetchone()["n"]
    return CycleResult(due, hits, n_open)


def settle(conn: Connection, now: datetime) -> None:
    """Link alerts to their root causes, mark silenced ones and route new ones to a team."""
    conn.execute(_INHIBIT)
    conn.execute(_SILENCE, {"now": now})
    conn.execute(ROUTE_NEW)


def device_went_offline(conn: Connection, device_id: str, at: datetime, now: datetime,
                        calendar: SchoolCalendar, tz: str | None = None) -> None:
    """The immediate path for a last will: evaluate the offline rules at once.

    The ingest may not have stored the status yet, so the device's state is brought
    forward here first (only if this news is newer); the ingest's later write is the same.
    """
    with conn.transaction():
        device_state.went_offline(conn, device_id, at)
    run_cycle(conn, now, calendar, tz, only={"device_offline", "gateway_offline"})


__all__ = ["CHECKS", "Clock", "CycleResult", "device_went_offline", "run_cycle", "settle"]
