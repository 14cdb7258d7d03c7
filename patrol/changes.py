"""What changed since the patrol last evaluated a rule: the devices to look at, or the whole fleet.

A check marked `per_device` (patrol/rules.py) is evaluated for the devices whose state may have
changed since its rules were last evaluated (and, for a check the clock can end, the devices with
one of its alerts open), unless something else the evaluation reads changed since: then over the
whole fleet, as on the first cycle. A device left out would give the rows it gave last time: its
open alerts stay as they are, and count as seen again (sql/037). What else the evaluation reads is
kept per rule as a fingerprint (`patrol_rule_state.basis`, sql/035): the rule's params and
overrides, whether the rule counts now and since when (its hours), the maintenance windows in
force, the registry's version, the values of the query parameters the check names in `clock`,
and the check's SQL.

Which device states may have changed is read from the rows themselves: each row version carries
the transaction that wrote it (`xmin`). An evaluation sees every transaction older than the
oldest one still running when it began (its snapshot's xmin); a row written by that one or a
newer one may be news to it, so the next evaluation looks at that device (some it had seen
already: harmless). This needs no clock agreement between services, no trigger on the ingest's
writes and no guess at how long a transaction may run. It costs one pass over device_state's
row headers, the one part of an incremental cycle that still grows with the fleet.
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime

from psycopg import Connection, sql

from patrol.rules import Check

# 32-bit transaction ids wrap: a rule not evaluated for this many transactions is evaluated anew.
_HORIZON = 1 << 30

# The candidates' state rows, copied once: each check reads them rather than joining device_state again.
_CANDIDATE_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS patrol_candidate ON COMMIT DELETE ROWS AS SELECT * FROM device_state WITH NO DATA
"""

_SNAPSHOT = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin"

_BASES = """
SELECT r.id, r.params::text AS params,
       (SELECT string_agg(concat_ws(':', o.scope_level, o.scope_code, o.params::text), ','
                          ORDER BY o.scope_level, o.scope_code)
        FROM patrol_rule_override o WHERE o.rule_id = r.id) AS overrides,
       s.basis, s.changes_from::text::bigint AS changes_from
FROM patrol_rule r LEFT JOIN patrol_rule_state s ON s.rule_id = r.id
WHERE r.id = ANY(%(rules)s)
"""

_SHARED = """
SELECT (SELECT version FROM patrol_registry_version) AS registry,
       (SELECT string_agg(concat_ws(':', id, scope_level, scope_code, starts_at, ends_at), ',' ORDER BY id)
        FROM maintenance_window WHERE starts_at <= %(now)s AND ends_at > %(now)s) AS maintenance
"""

# The devices the incremental checks look at: those whose state was written by a transaction
# from `since` on, and those with an alert of one of `rules` (of a check the clock can end) open.
# One set for all of them (a check looking at a device another one needed gives the same rows as
# over the whole fleet).
_CANDIDATES = """
INSERT INTO patrol_candidate
SELECT * FROM device_state
WHERE age(xmin) <= age(%(since)s::text::xid)
   OR device_id IN (SELECT device_id FROM alert WHERE state <> 'resolved' AND rule_id = ANY(%(rules)s))
"""

_RECORD = """
INSERT INTO patrol_rule_state AS s (rule_id, basis, changes_from, evaluated_at)
SELECT r, b, %(xmin)s::text::xid8, %(now)s FROM unnest(%(rules)s::text[], %(bases)s::text[]) AS x(r, b)
ON CONFLICT (rule_id) DO UPDATE SET basis = EXCLUDED.basis, changes_from = EXCLUDED.changes_from,
                                    evaluated_at = EXCLUDED.evaluated_at
"""

# A rule switched off forgets what it saw: switched on again, it looks at every device.
_FORGET_DISABLED = """
DELETE FROM patrol_rule_state s USING patrol_rule r WHERE r.id = s.rule_id AND NOT r.enabled
"""


def _xid32(xid: int) -> str:
    return str(xid % (1 << 32))


@dataclass
class ChangePlan:
    """How one cycle evaluates each check: over the whole fleet, or for some devices."""

    xmin: int  # the oldest transaction running when this cycle began
    since: dict[str, int] = field(default_factory=dict)  # per incremental check: states news from here
    bases: dict[str, str] = field(default_factory=dict)  # per rule of a per-device check: this basis
    whole_fleet: list[str] = field(default_factory=list)  # per-device checks evaluated over every device
    candidates: int = 0  # devices the other per-device checks looked at (patrol_candidate)
    partial: list[str] = field(default_factory=list)  # due rules of those checks: evaluated for the candidates

    def statement(self, check: Check) -> sql.Composable:
        """The check's statement for this cycle: over every device, or over the candidates."""
        if not check.per_device:
            return sql.SQL(check.sql)
        states = sql.Identifier("patrol_candidate" if check.name in self.since else "device_state")
        return sql.SQL(check.sql).format(device_state=states)


def plan(conn: Connection, checks: list[Check], due: list[str], windows: dict, params: dict,
         *, full: bool = False) -> ChangePlan:
    """Decide, for each per-device check about to run, whether it may look only at what changed."""
    xmin = conn.execute(_SNAPSHOT).fetchone()["xmin"]
    result = ChangePlan(xmin)
    conn.execute(_CANDIDATE_TABLE)
    conn.execute("DELETE FROM patrol_candidate")
    incremental = [c for c in checks if c.per_device]
    if not incremental:
        return result
    rules = [r for c in incremental for r in c.rules if r in due]
    rows = {r["id"]: r for r in conn.execute(_BASES, {"rules": rules}).fetchall()}
    shared = conn.execute(_SHARED, {"now": params["now"]}).fetchone()
    for check in incremental:
        clock = {name: params[name] for name in check.clock}
        since = []
        for rule in (r for r in check.rules if r in due):
            row = rows[rule]
            basis = json.dumps([row["params"], row["overrides"], shared["registry"], shared["maintenance"],
                                windows[rule], clock, check.sql], default=str)
            result.bases[rule] = hashlib.sha256(basis.encode()).hexdigest()
            fresh = row["changes_from"] is not None and 0 <= xmin - row["changes_from"] < _HORIZON
            since.append(row["changes_from"] if fresh and row["basis"] == result.bases[rule] else None)
        if full or None in since:
            result.whole_fleet.append(check.name)
        else:
            result.since[check.name] = min(since)
    if result.since:
        result.partial = [r for c in incremental if c.name in result.since for r in c.rules if r in due]
        expiring = [r for c in incremental if c.name in result.since and c.expires for r in c.rules if r in due]
        cur = conn.execute(_CANDIDATES, {"since": _xid32(min(result.since.values())), "rules": expiring})
        result.candidates = cur.rowcount
        conn.execute("ANALYZE patrol_candidate (device_id, online)")  # a temporary table has no statistics
    return result


def record(conn: Connection, change_plan: ChangePlan, now: datetime) -> None:
    """Keep what this cycle's evaluations rested on, for the next cycle to compare with."""
    conn.execute(_FORGET_DISABLED)
    if change_plan.bases:
        conn.execute(_RECORD, {"xmin": change_plan.xmin, "now": now, "rules": list(change_plan.bases),
                               "bases": list(change_plan.bases.values())})
