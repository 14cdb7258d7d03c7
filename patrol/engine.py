"""One patrol cycle: evaluate the due rules set-based, then move every alert along its lifecycle.

Conditions land in a temporary `patrol_hit` table; a handful of statements then open
(pending) alerts, fire those true for their for-duration, drop pending ones that
cleared, resolve fired ones that cleared, link alerts to their root cause (inhibition),
mark silenced ones and route new ones to a team. Outside a rule's hours and inside a
maintenance window nothing new opens and nothing fires, but alerts still resolve
when their condition clears. The clock is a parameter so tests (and replays) choose it.

A cycle scales with what changed, not with the fleet: a per-device check looks only at the
devices whose state changed since its rules were last evaluated, unless something else it reads
changed (patrol/changes.py). A device it did not look at gives the conditions it gave last time,
so its open alerts of those rules are left as they are: neither dropped nor resolved, and seen
again without being written (an alert's last_seen and count follow from its rule's evaluations
while it is seen at each, sql/037; only a new detail or severity, or the start or end of such a
run, writes it). The statements that move alerts along work set-based on the open alerts and
the conditions found, never one alert's subquery at a time. `full=True` evaluates every check
over the whole fleet.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from psycopg import Connection, sql

from core import device_state
from core.calendar import LESSON_PERIODS, SCHOOL_OPENS, SchoolCalendar
from patrol import changes
from patrol.routing import ROUTE_NEW, TEAM_LADDER
from patrol.rules import CHECKS, checks_for

# Looking an alert's condition up by index costs little whatever plan the estimates lead to (the
# alert table's statistics lag behind a cycle that opened thousands); a hash index, as its text
# keys cost a btree a collation comparison at every level of every insert.
_HIT_TABLE = ("""
CREATE TEMP TABLE IF NOT EXISTS patrol_hit (
    rule_id text NOT NULL, device_id text NOT NULL, school_code char(10) NOT NULL,
    detail jsonb NOT NULL, since timestamptz, severity text NOT NULL, counts boolean NOT NULL DEFAULT true,
    window_start timestamptz, open boolean NOT NULL
) ON COMMIT DELETE ROWS
""", """
CREATE INDEX IF NOT EXISTS patrol_hit_device ON patrol_hit USING hash (device_id)
""", """
CREATE TEMP TABLE IF NOT EXISTS patrol_moved (school_code char(10) NOT NULL, device_id text NOT NULL)
ON COMMIT DELETE ROWS
""")

# Keep a hit of a due rule when the rule counts now, or when it keeps an open alert from
# resolving; whether it counts and since when come with it (the rule's hours), its severity
# (the rule's unless the check says), and whether its alert is open.
_COLLECT = """
INSERT INTO patrol_hit (rule_id, device_id, school_code, detail, since, severity, counts, window_start, open)
SELECT c.rule_id, c.device_id, c.school_code, c.detail, c.since, coalesce(c.severity, w.severity), w.active,
       w.window_start, o.open
FROM ({check}) AS c (rule_id, device_id, school_code, detail, since, severity)
JOIN unnest(%(rules)s::text[], %(actives)s::boolean[], %(starts)s::timestamptz[], %(severities)s::text[])
  AS w (rule_id, active, window_start, severity) ON w.rule_id = c.rule_id
CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM alert a WHERE a.rule_id = c.rule_id AND a.device_id = c.device_id
                                   AND a.state <> 'resolved') AS open) AS o
WHERE w.active OR o.open
"""

# The effective params at each school with an override, read once per cycle from their view
# (sql/011): every check and statement of the cycle joins them, and a small analysed table plans
# as one, where the view's estimates led to merging every device with it in school order.
_PARAMS = ("""
CREATE TEMP TABLE IF NOT EXISTS patrol_params (
    rule_id text NOT NULL, school_code char(10) NOT NULL, params jsonb NOT NULL
) ON COMMIT DELETE ROWS
""", """
DELETE FROM patrol_params
""", """
INSERT INTO patrol_params SELECT rule_id, school_code, params FROM patrol_school_params
""", """
ANALYZE patrol_params
""")

_SCOPE_AND_MAINTENANCE = ("""
DELETE FROM patrol_hit h USING patrol_params sp
WHERE sp.rule_id = h.rule_id AND sp.school_code = h.school_code AND (sp.params ->> 'enabled')::boolean IS false
""", """
UPDATE patrol_hit h SET counts = false
WHERE counts AND EXISTS (
    SELECT 1 FROM maintenance_window m
    WHERE m.starts_at <= %(now)s AND m.ends_at > %(now)s
      AND ((m.scope_level = 'device' AND m.scope_code = h.device_id)
           OR (m.scope_level <> 'device' AND school_in_scope(m.scope_level, m.scope_code, h.school_code))))
""")

# This cycle's evaluation of each due rule is the one after its last (patrol_rule_seen, sql/037);
# the rows are locked until the cycle ends, so two cycles of a rule never count the same evaluation.
_EVALUATION = ("""
INSERT INTO patrol_rule_seen (rule_id, evaluations, evaluated_at)
SELECT rule_id, 0, %(now)s FROM unnest(%(due)s::text[]) AS d (rule_id)
ON CONFLICT (rule_id) DO NOTHING
""", """
SELECT rule_id FROM patrol_rule_seen WHERE rule_id = ANY(%(due)s) ORDER BY rule_id FOR UPDATE
""")

# An open alert whose condition holds and counts now is seen again: one more sighting. During
# a run of sightings that is already so (sql/037): the row is written only when its detail or
# severity changed, or to start a run. A fired alert whose condition holds but does not count
# now (outside its rule's hours, in a maintenance window) stays open and is not seen: its run
# ends, its figures stay as they were (sql/037); a pending one is dropped below. (Its device is
# in service: retiring a device resolves its alerts, sql/029.)
_SEEN = """
UPDATE alert a SET detail = CASE WHEN h.counts THEN h.detail ELSE a.detail END,
                   severity = CASE WHEN h.counts THEN h.severity ELSE a.severity END,
                   last_seen = CASE WHEN h.counts AND a.seen_from IS NULL THEN %(now)s ELSE a.last_seen END,
                   count = CASE WHEN h.counts AND a.seen_from IS NULL THEN a.count + 1 ELSE a.count END,
                   seen_from = CASE WHEN h.counts THEN coalesce(a.seen_from, e.evaluations + 1) END
FROM patrol_hit h JOIN patrol_rule_seen e ON e.rule_id = h.rule_id
WHERE h.open AND a.rule_id = h.rule_id AND a.device_id = h.device_id AND a.state <> 'resolved'
  AND CASE WHEN h.counts THEN a.seen_from IS NULL OR a.detail <> h.detail OR a.severity <> h.severity
           ELSE a.seen_from IS NOT NULL AND a.state <> 'pending' END
"""

# A condition with no open alert opens one: firing at once when it has held for the rule's
# for-duration already, else pending, routed to the team owning its school, its run of
# sightings starting with this evaluation. (Each later UPDATE of a row inserted in the same
# transaction runs its foreign-key checks again: a new alert is written whole, once.)
# ON CONFLICT: the same as seen again, should another writer have opened it meanwhile.
_OPEN = """
WITH fresh AS (
    SELECT h.rule_id, h.device_id, h.school_code, h.severity,
           r.title || '：' || s.name || ' ' || d.room AS summary, h.detail,
           least(%(now)s, greatest(coalesce(h.since, %(now)s), h.window_start)) AS first_seen,
           coalesce((sp.params ->> 'for_s')::int, r.for_s) AS for_s, e.evaluations + 1 AS seen_from
    FROM patrol_hit h JOIN patrol_rule r ON r.id = h.rule_id JOIN patrol_rule_seen e ON e.rule_id = h.rule_id
    JOIN device d ON d.id = h.device_id JOIN school s ON s.code = h.school_code
    LEFT JOIN patrol_params sp ON sp.rule_id = h.rule_id AND sp.school_code = h.school_code
    WHERE h.counts AND NOT h.open
), waiting AS (
    SELECT DISTINCT school_code FROM fresh
), ladder AS ({ladder}
){opening}
"""
_OPENING = """
INSERT INTO alert AS a (rule_id, device_id, school_code, state, severity, summary, detail, first_seen,
                        last_seen, count, seen_from, fired_at, team_id)
SELECT f.rule_id, f.device_id, f.school_code, CASE WHEN x.fires THEN 'firing' ELSE 'pending' END, f.severity,
       f.summary, f.detail, f.first_seen, %(now)s, 1, f.seen_from, CASE WHEN x.fires THEN %(now)s::timestamptz END,
       l.team_id
FROM fresh f CROSS JOIN LATERAL (SELECT f.first_seen + make_interval(secs => f.for_s) <= %(now)s AS fires) AS x
LEFT JOIN ladder l ON l.school_code = f.school_code AND l.level = 0
ON CONFLICT (rule_id, device_id) WHERE state <> 'resolved' DO UPDATE SET
    detail = EXCLUDED.detail, severity = EXCLUDED.severity,
    last_seen = CASE WHEN a.seen_from IS NULL THEN EXCLUDED.last_seen ELSE a.last_seen END,
    count = CASE WHEN a.seen_from IS NULL THEN a.count + 1 ELSE a.count END,
    seen_from = coalesce(a.seen_from, EXCLUDED.seen_from)
"""
# Where an alert opens, drops or resolves goes into patrol_moved: there causes may change (unless
# every alert's is looked at again).
_NOTED = ", opened AS ({opening} RETURNING a.school_code, a.device_id) INSERT INTO patrol_moved SELECT * FROM opened"

# Of the alerts of the due rules whose device was looked at (every device, or the candidates
# for the rules of `partial`): pending ones no longer seen drop, fired ones whose condition is
# gone resolve.
_CLEAR = ("""
WITH moved AS (
    DELETE FROM alert a
    WHERE a.state = 'pending' AND a.rule_id = ANY(%(due)s)
      AND (a.rule_id <> ALL(%(partial)s) OR a.device_id IN (SELECT device_id FROM patrol_candidate))
      AND NOT EXISTS (SELECT 1 FROM patrol_hit h
                      WHERE h.rule_id = a.rule_id AND h.device_id = a.device_id AND h.counts)
    RETURNING a.school_code, a.device_id)
INSERT INTO patrol_moved SELECT * FROM moved
""", """
WITH moved AS (
    UPDATE alert a SET state = 'resolved', resolved_at = %(now)s, resolution = 'condition cleared'
    WHERE a.state IN ('firing', 'acknowledged') AND a.rule_id = ANY(%(due)s)
      AND (a.rule_id <> ALL(%(partial)s) OR a.device_id IN (SELECT device_id FROM patrol_candidate))
      AND NOT EXISTS (SELECT 1 FROM patrol_hit h WHERE h.rule_id = a.rule_id AND h.device_id = a.device_id)
    RETURNING a.school_code, a.device_id)
INSERT INTO patrol_moved SELECT * FROM moved
""", """
WITH moved AS (
    UPDATE alert a SET state = 'resolved', resolved_at = %(now)s, resolution = 'rule disabled'
    FROM patrol_rule r WHERE r.id = a.rule_id AND NOT r.enabled AND a.state <> 'resolved'
    RETURNING a.school_code, a.device_id)
INSERT INTO patrol_moved SELECT * FROM moved
""", """
DELETE FROM alert WHERE state = 'resolved' AND fired_at IS NULL
""")

# The evaluation counted, once the alerts have moved: a run of sightings that ended in this cycle
# ended before it (sql/037).
_EVALUATED = """
UPDATE patrol_rule_seen SET evaluations = evaluations + 1, evaluated_at = %(now)s WHERE rule_id = ANY(%(due)s)
"""

# Open alerts, and those of them a device not looked at kept, its conditions as last time: of
# the rules evaluated for some devices, the open alerts without a condition found this cycle
# (an open alert looked at has one).
_OPEN_COUNT = """
SELECT count(*) AS n, count(*) FILTER (WHERE a.rule_id = ANY(%(partial)s) AND h.rule_id IS NULL) AS kept
FROM alert a LEFT JOIN patrol_hit h ON h.rule_id = a.rule_id AND h.device_id = a.device_id
WHERE a.state <> 'resolved'
"""
_OPEN_ONLY = "SELECT count(*) AS n, 0 AS kept FROM alert WHERE state <> 'resolved'"

_FIRE = """
UPDATE alert a SET state = 'firing', fired_at = %(now)s
WHERE a.id IN (
    SELECT a2.id FROM alert a2 JOIN patrol_rule r ON r.id = a2.rule_id
    LEFT JOIN patrol_params sp ON sp.rule_id = a2.rule_id AND sp.school_code = a2.school_code
    WHERE a2.state = 'pending'
      AND a2.first_seen + make_interval(secs => coalesce((sp.params ->> 'for_s')::int, r.for_s)) <= %(now)s)
"""

# Each open alert's cause: the oldest open alert of a rule that inhibits it, in its school
# (first) or on its device (never itself: no rule inhibits its own, sql/011). A cause changes only
# where an alert opened, dropped or resolved (patrol_moved): the alerts of those schools and
# devices are linked again, against the oldest alert of each inhibiting rule there; `everything`
# links them all. Hash joins, whatever their number; only the alerts whose cause changed are written.
_INHIBIT = """
WITH target AS MATERIALIZED (
    SELECT id, rule_id, device_id, school_code, inhibited_by FROM alert
    WHERE state <> 'resolved'
      AND (%(everything)s OR school_code IN (SELECT school_code FROM patrol_moved)
           OR device_id IN (SELECT device_id FROM patrol_moved))
), first_in_school AS (
    SELECT rule_id, school_code, min(id) AS source_id FROM alert
    WHERE state <> 'resolved' AND rule_id IN (SELECT source_rule FROM patrol_inhibition WHERE same = 'school')
      AND (%(everything)s OR school_code IN (SELECT school_code FROM target))
    GROUP BY rule_id, school_code
), first_on_device AS (
    SELECT rule_id, device_id, min(id) AS source_id FROM alert
    WHERE state <> 'resolved' AND rule_id IN (SELECT source_rule FROM patrol_inhibition WHERE same = 'device')
      AND (%(everything)s OR device_id IN (SELECT device_id FROM target))
    GROUP BY rule_id, device_id
), by_school AS (
    SELECT t.id, min(f.source_id) AS source_id
    FROM target t JOIN patrol_inhibition i ON i.target_rule = t.rule_id AND i.same = 'school'
    JOIN first_in_school f ON f.rule_id = i.source_rule AND f.school_code = t.school_code
    GROUP BY t.id
), by_device AS (
    SELECT t.id, min(f.source_id) AS source_id
    FROM target t JOIN patrol_inhibition i ON i.target_rule = t.rule_id AND i.same = 'device'
    JOIN first_on_device f ON f.rule_id = i.source_rule AND f.device_id = t.device_id
    GROUP BY t.id
), cause AS (
    SELECT t.id, t.inhibited_by, coalesce(bs.source_id, bd.source_id) AS source_id
    FROM target t LEFT JOIN by_school bs ON bs.id = t.id LEFT JOIN by_device bd ON bd.id = t.id
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
    hits: int  # conditions true: found by this cycle, or kept with their open alerts by devices not looked at
    open_alerts: int
    seconds: float = 0.0
    whole_fleet: list[str] = field(default_factory=list)  # per-device checks that looked at every device
    candidates: int = 0  # devices the other per-device checks looked at: changed, or with an alert open


def due_rules(conn: Connection, now: datetime) -> list[dict]:
    """The enabled rules whose cadence says they are due at `now`."""
    return conn.execute(
        """SELECT id, active_in, params, severity FROM patrol_rule
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


def load_params(conn: Connection) -> None:
    """Read every rule's effective params at each school with an override into `patrol_params`,
    which the checks join; within a transaction (it is emptied at commit)."""
    for statement in _PARAMS:
        conn.execute(statement)


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
        rules = [r for r in due_rules(conn, now) if only is None or r["id"] in only]
        due = [r["id"] for r in rules]
        windows = {r["id"]: clock.window(r["active_in"]) for r in rules}
        _prepare(conn, now, due)
        params = {**_query_params(clock, tz, rule_defaults(conn)), "rules": list(windows),
                  "actives": [w[0] for w in windows.values()], "starts": [w[1] for w in windows.values()],
                  "severities": [r["severity"] for r in rules]}
        plan = collect(conn, due, windows, params, full=full)
        hits = _judge(conn, now)
        everything = full or bool(plan.whole_fleet)
        _move(conn, now, due, plan, everything=everything)
        settle(conn, now, everything=everything)
        conn.execute("UPDATE patrol_rule SET last_evaluated_at = %s WHERE id = ANY(%s)", (now, due))
        changes.record(conn, plan, now)
        counted = conn.execute(_OPEN_COUNT if plan.partial else _OPEN_ONLY, {"partial": plan.partial}).fetchone()
    return CycleResult(due, hits + counted["kept"], counted["n"], whole_fleet=plan.whole_fleet,
                       candidates=plan.candidates)


def _prepare(conn: Connection, now: datetime, due: list[str]) -> None:
    """The cycle's settings, its empty temporary tables, its evaluation of each due rule and the params."""
    # Compiling these plans costs far more than running them.
    conn.execute("SET LOCAL jit = off")
    # The temporary tables are analysed for their size and spread: a small sample says enough.
    conn.execute("SET LOCAL default_statistics_target = 10")
    # A check over the whole fleet hashes every device's state: in memory, not in batches on disk.
    conn.execute("SET LOCAL work_mem = '32MB'")
    for statement in _HIT_TABLE:
        conn.execute(statement)
    conn.execute("DELETE FROM patrol_hit")
    conn.execute("DELETE FROM patrol_moved")
    for statement in _EVALUATION:
        conn.execute(statement, {"now": now, "due": due})
    load_params(conn)


def _judge(conn: Connection, now: datetime) -> int:
    """Drop the conditions of schools where their rule is off, mark those in maintenance as not
    counting; how many are left."""
    for statement in _SCOPE_AND_MAINTENANCE:
        conn.execute(statement, {"now": now})
    conn.execute("ANALYZE patrol_hit (rule_id, device_id, counts, open)")
    return conn.execute("SELECT count(*) AS n FROM patrol_hit").fetchone()["n"]


def _move(conn: Connection, now: datetime, due: list[str], plan: changes.ChangePlan, *, everything: bool) -> None:
    """Move the alerts of the due rules along: seen again or not, dropped, resolved, fired, opened."""
    conn.execute(_SEEN, {"now": now})
    # The alerts there were move first: those about to open could not fire, drop or resolve now.
    for statement in _CLEAR:
        conn.execute(statement, {"now": now, "due": due, "partial": plan.partial})
    conn.execute(_FIRE, {"now": now})
    opening = sql.SQL(_OPENING) if everything else sql.SQL(_NOTED).format(opening=sql.SQL(_OPENING))
    conn.execute(sql.SQL(_OPEN).format(ladder=sql.SQL(TEAM_LADDER), opening=opening), {"now": now})
    conn.execute(_EVALUATED, {"now": now, "due": due})


def settle(conn: Connection, now: datetime, *, everything: bool = True) -> None:
    """Link alerts to their root causes (those where alerts moved this cycle, or `everything`), mark
    silenced ones and route new ones to a team."""
    conn.execute(_INHIBIT, {"everything": everything})
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


__all__ = ["CHECKS", "Clock", "CycleResult", "device_went_offline", "load_params", "run_cycle", "settle"]
