"""One patrol cycle: evaluate the due rules set-based, then move every alert along its lifecycle.

Conditions land in a temporary `patrol_hit` table; a handful of statements then open
(pending) alerts, fire those true for their for-duration, drop pending ones that
cleared, resolve fired ones that cleared, link alerts to their root cause (inhibition),
mark silenced ones and route new ones to a team. Outside a rule's hours and inside a
maintenance window nothing new opens and nothing fires, but alerts still resolve
when their condition clears. The clock is a parameter so tests (and replays) choose it.

A cycle scales with what changed, not with the fleet: a per-device check looks only at the
devices whose state changed since its rules were last evaluated and those with one of its
alerts open, unless something else it reads changed (patrol/changes.py); the statements that
move alerts along work on the open alerts and the conditions found, set-based, never one
alert's subquery at a time. `full=True` evaluates every check over the whole fleet.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from psycopg import Connection, sql

from core import device_state
from core.calendar import LESSON_PERIODS, SCHOOL_OPENS, SchoolCalendar
from patrol import changes
from patrol.routing import ROUTE_NEW, TEAM_LADDER
from patrol.rules import CHECKS, checks_for

_HIT_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS patrol_hit (
    rule_id text NOT NULL, device_id text NOT NULL, school_code char(10) NOT NULL,
    detail jsonb NOT NULL, since timestamptz, severity text, counts boolean NOT NULL DEFAULT true,
    window_start timestamptz, open boolean NOT NULL
) ON COMMIT DELETE ROWS
"""

# Keep a hit of a due rule when the rule counts now, or when it keeps an open alert from
# resolving; whether it counts and since when come with it (the rule's hours), and whether
# its alert is open.
_COLLECT = """
INSERT INTO patrol_hit (rule_id, device_id, school_code, detail, since, severity, counts, window_start, open)
SELECT c.*, w.active, w.window_start, o.open
FROM ({check}) AS c (rule_id, device_id, school_code, detail, since, severity)
JOIN unnest(%(rules)s::text[], %(actives)s::boolean[], %(starts)s::timestamptz[]) AS w (rule_id, active, window_start)
  ON w.rule_id = c.rule_id
CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM alert a WHERE a.rule_id = c.rule_id AND a.device_id = c.device_id
                                   AND a.state <> 'resolved') AS open) AS o
WHERE w.active OR o.open
"""

_SCOPE_AND_MAINTENANCE = ("""
DELETE FROM patrol_hit h USING patrol_school_params sp
WHERE sp.rule_id = h.rule_id AND sp.school_code = h.school_code AND (sp.params ->> 'enabled')::boolean IS false
""", """
UPDATE patrol_hit h SET counts = false
WHERE counts AND EXISTS (
    SELECT 1 FROM maintenance_window m
    WHERE m.starts_at <= %(now)s AND m.ends_at > %(now)s
      AND ((m.scope_level = 'device' AND m.scope_code = h.device_id)
           OR (m.scope_level <> 'device' AND school_in_scope(m.scope_level, m.scope_code, h.school_code))))
""")

# An open alert seen again: one more sighting. (Its device is in service: retiring a device
# resolves its alerts, sql/029.) Only these columns change, none of them indexed, so with the
# table's free space (sql/035) the new row version stays on its page and no index is touched.
_SEEN_AGAIN = """
UPDATE alert a SET last_seen = %(now)s, count = a.count + 1, detail = h.detail,
                   severity = coalesce(h.severity, r.severity)
FROM patrol_hit h JOIN patrol_rule r ON r.id = h.rule_id
WHERE h.counts AND a.rule_id = h.rule_id AND a.device_id = h.device_id AND a.state <> 'resolved'
"""

# A condition with no open alert opens one: firing at once when it has held for the rule's
# for-duration already, else pending, and routed to the team owning its school. (Each later
# UPDATE of a row inserted in the same transaction runs its foreign-key checks again: a new
# alert is written whole, once.) ON CONFLICT: the same as seen again, should another writer
# have opened it meanwhile.
_OPEN = """
WITH fresh AS (
    SELECT h.rule_id, h.device_id, h.school_code, coalesce(h.severity, r.severity) AS severity,
           r.title || '：' || s.name || ' ' || d.room AS summary, h.detail,
           least(%(now)s, greatest(coalesce(h.since, %(now)s), h.window_start)) AS first_seen,
           coalesce((sp.params ->> 'for_s')::int, r.for_s) AS for_s
    FROM patrol_hit h JOIN patrol_rule r ON r.id = h.rule_id
    JOIN device d ON d.id = h.device_id JOIN school s ON s.code = h.school_code
    LEFT JOIN patrol_school_params sp ON sp.rule_id = h.rule_id AND sp.school_code = h.school_code
    WHERE h.counts AND NOT h.open
), waiting AS (
    SELECT DISTINCT school_code FROM fresh
), ladder AS ({ladder})
INSERT INTO alert AS a (rule_id, device_id, school_code, state, severity, summary, detail, first_seen,
                        last_seen, count, fired_at, team_id)
SELECT f.rule_id, f.device_id, f.school_code, CASE WHEN x.fires THEN 'firing' ELSE 'pending' END, f.severity,
       f.summary, f.detail, f.first_seen, %(now)s, 1, CASE WHEN x.fires THEN %(now)s::timestamptz END, l.team_id
FROM fresh f CROSS JOIN LATERAL (SELECT f.first_seen + make_interval(secs => f.for_s) <= %(now)s AS fires) AS x
LEFT JOIN ladder l ON l.school_code = f.school_code AND l.level = 0
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

# Each open alert's cause: the oldest other open alert of a rule that inhibits it, in its school
# (first) or on its device. Hash joins over the open alerts, whatever their number; only the
# alerts whose cause changed are written.
_INHIBIT = """
WITH live AS MATERIALIZED (
    SELECT id, rule_id, device_id, school_code, inhibited_by FROM alert WHERE state <> 'resolved'
), by_school AS (
    SELECT t.id, min(s.id) AS source_id
    FROM live t JOIN patrol_inhibition i ON i.target_rule = t.rule_id AND i.same = 'school'
    JOIN (SELECT * FROM live WHERE rule_id IN (SELECT source_rule FROM patrol_inhibition WHERE same = 'school')) AS s
      ON s.rule_id = i.source_rule AND s.school_code = t.school_code AND s.id <> t.id
    GROUP BY t.id
), by_device AS (
    SELECT t.id, min(s.id) AS source_id
    FROM live t JOIN patrol_inhibition i ON i.target_rule = t.rule_id AND i.same = 'device'
    JOIN (SELECT * FROM live WHERE rule_id IN (SELECT source_rule FROM patrol_inhibition WHERE same = 'device')) AS s
      ON s.rule_id = i.source_rule AND s.device_id = t.device_id AND s.id <> t.id
    GROUP BY t.id
), cause AS (
    SELECT t.id, t.inhibited_by, coalesce(bs.source_id, bd.source_id) AS source_id
    FROM live t LEFT JOIN by_school bs ON bs.id = t.id LEFT JOIN by_device bd ON bd.id = t.id
)
UPDATE alert a SET inhibited_by = c.source_id
FROM cause c WHERE a.id = c.id AND c.inhibited_by IS DISTINCT FROM c.source_id
"""

# Each open alert's silence: of those running now that match it, the one ending last. With no
# silence running, only alerts still marked with one are looked at.
_SILENCE = """
WITH running AS MATERIALIZED (
    SELECT id, rule_id, device_id, scope_level, scope_code, ends_at FROM silence
    WHERE starts_at <= %(now)s AND ends_at > %(now)s
)
UPDATE alert a SET silence_id = x.silence_id
FROM (
    SELECT t.id, t.silence_id AS marked,
           (SELECT s.id FROM running s
            WHERE (s.rule_id IS NULL OR s.rule_id = t.rule_id) AND (s.device_id IS NULL OR s.device_id = t.device_id)
              AND (s.scope_level IS NULL OR school_in_scope(s.scope_level, s.scope_code, t.school_code))
            ORDER BY s.ends_at DESC LIMIT 1) AS silence_id
    FROM alert t
    WHERE t.state <> 'resolved' AND (t.silence_id IS NOT NULL OR EXISTS (SELECT 1 FROM running))) AS x
WHERE a.id = x.id AND x.marked IS DISTINCT FROM x.silence_id
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
    whole_fleet: list[str] = field(default_factory=list)  # per-device checks that looked at every device
    candidates: int = 0  # devices the other per-device checks looked at: changed, or with an alert open


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


def collect(conn: Connection, due: list[str], windows: dict, params: dict, *,
            full: bool = False) -> changes.ChangePlan:
    """Run the due rules' checks into patrol_hit, each over what changed or over the whole fleet."""
    checks = checks_for(set(due))
    plan = changes.plan(conn, checks, due, windows, params, full=full)
    for check in checks:
        conn.execute(sql.SQL(_COLLECT).format(check=plan.statement(check)), params)
    return plan


def run_cycle(conn: Connection, now: datetime, calendar: SchoolCalendar, tz: str | None = None,
              *, only: set[str] | None = None, full: bool = False) -> CycleResult:
    """Evaluate the due rules (or `only` these) at `now` and update every alert, in one transaction;
    days in `tz`, by default the calendar's zone; `full`: every check over the whole fleet."""
    tz = tz or calendar.tz.key
    clock = Clock.at(now, calendar)
    with conn.transaction():
        # Compiling these plans (their estimates are large: the overrides view) costs far more
        # than running them.
        conn.execute("SET LOCAL jit = off")
        rules = [r for r in due_rules(conn, now) if only is None or r["id"] in only]
        due = [r["id"] for r in rules]
        windows = {r["id"]: clock.window(r["active_in"]) for r in rules}
        conn.execute(_HIT_TABLE)
        conn.execute("DELETE FROM patrol_hit")
        params = {**_query_params(clock, tz, rule_defaults(conn)), "rules": list(windows),
                  "actives": [w[0] for w in windows.values()], "starts": [w[1] for w in windows.values()]}
        plan = collect(conn, due, windows, params, full=full)
        for statement in _SCOPE_AND_MAINTENANCE:
            conn.execute(statement, {"now": now})
        hits = conn.execute("SELECT count(*) AS n FROM patrol_hit").fetchone()["n"]
        conn.execute(_SEEN_AGAIN, {"now": now})
        conn.execute(sql.SQL(_OPEN).format(ladder=sql.SQL(TEAM_LADDER)), {"now": now})
        for statement in _CLEAR:
            conn.execute(statement, {"now": now, "due": due})
        conn.execute(_FIRE, {"now": now})
        settle(conn, now)
        conn.execute("UPDATE patrol_rule SET last_evaluated_at = %s WHERE id = ANY(%s)", (now, due))
        changes.record(conn, plan, now)
        n_open = conn.execute("SELECT count(*) AS n FROM alert WHERE state <> 'resolved'").fetchone()["n"]
    return CycleResult(due, hits, n_open, whole_fleet=plan.whole_fleet, candidates=plan.candidates)


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
