"""The incremental cycle opens, fires, resolves, links, mutes and routes exactly the alerts that
evaluating every check over the whole fleet does.

The reference is the cycle as it was before it looked only at what changed: every check over
every device, then the lifecycle statements one open alert at a time (kept here verbatim). On
one province-in-miniature with every rule's condition somewhere, the clock moves through a
morning and into the next day, with changes between the cycles: devices dropping off and coming
back, a gateway taking its school down, readings going stale, a lesson's stream stopping, a
maintenance window and a silence ending, an override removed, a device moved. At each step the
reference cycle and `run_cycle(full=True)` run on the same state and are rolled back; then the
incremental cycle runs for real, and all three must leave the same alerts, read as users see
them (`alert_seen`: an alert seen at every evaluation is not written again, sql/037). The
reference starts from those figures written into the rows, as the former cycle kept them.
"""

import json
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from core.calendar import load_calendar
from core.db import open_pool
from core.settings import platform_settings
from patrol.alerts import create_maintenance, create_silence, set_override
from patrol.engine import Clock, due_rules, load_params, rule_defaults, run_cycle
from patrol.routing import create_team
from patrol.rules import CHECKS
from patrol.service import PatrolService
from patrol.settings import PatrolSettings
from tests.patrol.conftest import TZ

DAY = datetime(2025, 11, 26, tzinfo=TZ)  # a Wednesday in term


def at(hour: int, minute: int, day: int = 0) -> datetime:
    """Local time on the test's school day (or `day` days later)."""
    return DAY.replace(hour=hour, minute=minute) + timedelta(days=day)


# --- the reference: the whole fleet, the old statements ------------------------------------------

_HITS = """
CREATE TEMP TABLE IF NOT EXISTS reference_hit (
    rule_id text NOT NULL, device_id text NOT NULL, school_code char(10) NOT NULL,
    detail jsonb NOT NULL, since timestamptz, severity text, counts boolean NOT NULL DEFAULT true,
    window_start timestamptz)
"""
_COLLECT = """
INSERT INTO reference_hit (rule_id, device_id, school_code, detail, since, severity)
SELECT c.* FROM ({check}) AS c (rule_id, device_id, school_code, detail, since, severity)
WHERE c.rule_id = ANY(%(due)s)
  AND (c.rule_id = ANY(%(active)s)
       OR EXISTS (SELECT 1 FROM alert a WHERE a.rule_id = c.rule_id AND a.device_id = c.device_id
                  AND a.state <> 'resolved'))
"""
_AFTER_COLLECT = ("""
DELETE FROM reference_hit h USING patrol_school_params sp
WHERE sp.rule_id = h.rule_id AND sp.school_code = h.school_code AND (sp.params ->> 'enabled')::boolean IS false
""", """
UPDATE reference_hit h SET counts = w.active, window_start = w.window_start
FROM unnest(%(rules)s::text[], %(actives)s::boolean[], %(starts)s::timestamptz[]) AS w(rule_id, active, window_start)
WHERE w.rule_id = h.rule_id
""", """
UPDATE reference_hit h SET counts = false
WHERE counts AND EXISTS (
    SELECT 1 FROM maintenance_window m
    WHERE m.starts_at <= %(now)s AND m.ends_at > %(now)s
      AND ((m.scope_level = 'device' AND m.scope_code = h.device_id)
           OR (m.scope_level <> 'device' AND school_in_scope(m.scope_level, m.scope_code, h.school_code))))
""", """
INSERT INTO alert AS a (rule_id, device_id, school_code, state, severity, summary, detail, first_seen,
                        last_seen, count)
SELECT h.rule_id, h.device_id, h.school_code, 'pending', coalesce(h.severity, r.severity),
       r.title || '：' || s.name || ' ' || d.room, h.detail,
       least(%(now)s, greatest(coalesce(h.since, %(now)s), h.window_start)), %(now)s, 1
FROM reference_hit h JOIN patrol_rule r ON r.id = h.rule_id
JOIN device d ON d.id = h.device_id JOIN school s ON s.code = h.school_code
WHERE h.counts
ON CONFLICT (rule_id, device_id) WHERE state <> 'resolved' DO UPDATE SET
    last_seen = EXCLUDED.last_seen, count = a.count + 1, detail = EXCLUDED.detail, severity = EXCLUDED.severity
""", """
DELETE FROM alert a
WHERE a.state = 'pending' AND a.rule_id = ANY(%(due)s)
  AND NOT EXISTS (SELECT 1 FROM reference_hit h WHERE h.rule_id = a.rule_id AND h.device_id = a.device_id
                  AND h.counts)
""", """
UPDATE alert a SET state = 'resolved', resolved_at = %(now)s, resolution = 'condition cleared'
WHERE a.state IN ('firing', 'acknowledged') AND a.rule_id = ANY(%(due)s)
  AND NOT EXISTS (SELECT 1 FROM reference_hit h WHERE h.rule_id = a.rule_id AND h.device_id = a.device_id)
""", """
UPDATE alert a SET state = 'resolved', resolved_at = %(now)s, resolution = 'rule disabled'
FROM patrol_rule r WHERE r.id = a.rule_id AND NOT r.enabled AND a.state <> 'resolved'
""", """
DELETE FROM alert WHERE state = 'resolved' AND fired_at IS NULL
""", """
UPDATE alert a SET state = 'firing', fired_at = %(now)s
WHERE a.id IN (
    SELECT a2.id FROM alert a2 JOIN patrol_rule r ON r.id = a2.rule_id
    LEFT JOIN patrol_school_params sp ON sp.rule_id = a2.rule_id AND sp.school_code = a2.school_code
    WHERE a2.state = 'pending'
      AND a2.first_seen + make_interval(secs => coalesce((sp.params ->> 'for_s')::int, r.for_s)) <= %(now)s)
""", """
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
""", """
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
""", """
UPDATE alert a SET team_id = (
    SELECT t.id FROM ops_team t WHERE school_in_scope(t.scope_level, t.scope_code, a.school_code)
    ORDER BY patrol_scope_rank(t.scope_level) DESC OFFSET a.escalation_level LIMIT 1)
WHERE a.state <> 'resolved' AND a.team_id IS NULL
""", """
UPDATE patrol_rule SET last_evaluated_at = %(now)s WHERE id = ANY(%(due)s)
""")


def reference_cycle(conn, now: datetime, calendar) -> None:
    """Every due rule's check over every device, then every open alert moved along."""
    from psycopg.types.json import Jsonb

    conn.execute("UPDATE alert SET seen_from = NULL WHERE seen_from IS NOT NULL")  # the figures into the rows
    clock = Clock.at(now, calendar)
    rules = due_rules(conn, now)
    due = [r["id"] for r in rules]
    windows = {r["id"]: clock.window(r["active_in"]) for r in rules}
    params = {"now": now, "tz": calendar.tz.key, "today": clock.today, "local_time": clock.local_time,
              "school_day": clock.school_day, "recent_school_days": clock.recent_school_days,
              "defaults": Jsonb(rule_defaults(conn)), "due": due,
              "active": [rule for rule, (on, _) in windows.items() if on], "rules": list(windows),
              "actives": [w[0] for w in windows.values()], "starts": [w[1] for w in windows.values()]}
    conn.execute(_HITS)
    conn.execute("DELETE FROM reference_hit")
    load_params(conn)  # the overrides the checks read
    for check in CHECKS:
        if set(check.rules) & set(due):
            statement = (sql.SQL(check.sql).format(device_state=sql.Identifier("device_state")) if check.per_device
                         else sql.SQL(check.sql))
            conn.execute(sql.SQL(_COLLECT).format(check=statement), params)
    for statement in _AFTER_COLLECT:
        conn.execute(statement, params)


# --- the province in miniature -------------------------------------------------------------------

def alerts(conn) -> list[tuple]:
    """Every alert as the lifecycle left it (ids aside: a cause by its rule and device)."""
    rows = conn.execute(
        """SELECT a.rule_id, a.device_id, a.first_seen, a.school_code, a.state, a.severity, a.summary,
                  a.detail::text AS detail, a.last_seen, a.count, a.fired_at, a.resolved_at, a.resolution,
                  a.silence_id, a.team_id, c.rule_id AS cause_rule, c.device_id AS cause_device
           FROM alert_seen a LEFT JOIN alert c ON c.id = a.inhibited_by ORDER BY 1, 2, 3""").fetchall()
    return [tuple(r.values()) for r in rows]


def rolled_back(conn, cycle) -> list[tuple]:
    """The alerts a cycle leaves, with everything it wrote undone afterwards."""
    with conn.transaction() as tx:
        cycle()
        seen = alerts(conn)
        raise psycopg.Rollback(tx)
    return seen  # the Rollback ends only its own transaction block


def board_reading(world, board, at_: datetime, *, use=100, **values) -> None:
    """A board's reading stored and its state brought forward to it."""
    reading = {"cpu_temp_c": 55.0, "disk_used_pct": 40.0, "error_codes": [], **values}
    world.db.execute(
        """INSERT INTO board_telemetry (device_id, time, seq, power_on, screen_on, active_use_s, cpu_temp_c,
                                        disk_used_pct, error_codes) VALUES (%s, %s, %s, true, true, %s, %s, %s, %s)""",
        (board, at_, int(at_.timestamp()), use, reading["cpu_temp_c"], reading["disk_used_pct"],
         reading["error_codes"]))
    world.state(board, status_time=at(7, 40), last_seen=at_, last_values={"kind": "board", "active_use_s": use})


def cameras(**first) -> list[dict]:
    """Two cameras, the first with the given values."""
    return [{"role": "teacher", "online": True, "brightness": 120, "frozen_frames": 0, **first},
            {"role": "students", "online": True, "brightness": 120, "frozen_frames": 0}]


def gateway_values(**values) -> dict:
    """A gateway's last values, healthy unless told otherwise."""
    return {"kind": "gateway", "rx_mbps": 100, "uplink_mbps": 1000, "latency_ms": 8, "loss_pct": 0.1,
            "aps_total": 20, "aps_online": 20, **values}


def province(world) -> dict:
    """Schools and devices with every rule's condition somewhere; returns the devices by name."""
    reg, db = world.registry, world.db
    s = {name: world.school() for name in ("net", "boards", "video", "lesson", "quiet", "tuned")}
    d = {}
    for name, (school, kind) in {
            "g_net": ("net", "gateway"), "b_net": ("net", "board"), "r_net": ("net", "recorder"),
            "b_back": ("boards", "board"), "b_drop": ("boards", "board"), "b_hot": ("boards", "board"),
            "b_disk": ("boards", "board"), "b_err": ("boards", "board"), "b_idle": ("boards", "board"),
            "b_flap": ("boards", "board"), "g_bad": ("video", "gateway"), "r_cam": ("video", "recorder"),
            "r_main": ("lesson", "recorder"), "r_late": ("lesson", "recorder"), "b_recv": ("lesson", "board"),
            "b_maint": ("quiet", "board"), "b_tuned": ("tuned", "board"), "b_moved": ("quiet", "board")}.items():
        d[name] = reg.device(s[school], kind, room=f"{name}室")
    create_team(db, "省运维", "province", "420000")
    create_team(db, "曾都区运维", "county", "421303")
    early = at(7, 40)
    for name in ("g_net", "b_net", "r_net", "b_back", "b_drop", "b_recv", "b_moved"):
        world.state(d[name], status_time=early, last_seen=at(9, 50), last_values={"kind": "x"})
    world.offline(d["b_back"], at(8, 15))
    world.offline(d["b_maint"], at(9, 0))
    world.offline(d["b_tuned"], at(9, 0))
    board_reading(world, d["b_hot"], at(9, 54), cpu_temp_c=91.0)
    board_reading(world, d["b_disk"], at(9, 54), disk_used_pct=97.5)
    board_reading(world, d["b_err"], at(9, 54), error_codes=["E1024"])
    db.execute("""INSERT INTO board_telemetry (device_id, time, seq, power_on, screen_on, active_use_s)
                  VALUES (%s, %s, 1, true, true, 5000)""", (d["b_idle"], at(9, 0) - timedelta(days=30)))
    world.state(d["b_idle"], status_time=early, last_seen=at(9, 50), last_values={"kind": "board", "active_use_s": 5000})
    world.state(d["b_flap"], status_time=at(9, 40), last_seen=at(9, 50))
    for i in range(7):
        db.execute("INSERT INTO device_status_change (device_id, time, online, reason) VALUES (%s, %s, %s, 'status')",
                   (d["b_flap"], at(9, 20) + timedelta(minutes=3 * i), i % 2 == 0))
    world.state(d["g_bad"], status_time=early, last_seen=at(9, 50),
                last_values=gateway_values(rx_mbps=950, loss_pct=15.0, latency_ms=150, aps_online=10))
    world.state(d["r_cam"], status_time=early, last_seen=at(9, 50), streaming=True, recording=True,
                last_values={"kind": "recorder", "storage_free_gb": 20,
                             "cameras": cameras(online=False) + [{"role": "board", "online": True, "brightness": 250,
                                                                   "frozen_frames": 12}]})
    for minutes_ago, dropped in ((4, 100), (1, 700)):
        db.execute("""INSERT INTO recorder_telemetry (device_id, time, seq, recording, streaming, dropped_frames,
                                                      cameras_total, cameras_online)
                      VALUES (%s, %s, %s, true, true, %s, 3, 2)""",
                   (d["r_cam"], at(9, 55) - timedelta(minutes=minutes_ago), 10 - minutes_ago, dropped))
    world.state(d["r_main"], status_time=early, last_seen=at(9, 50), streaming=False, recording=False)
    world.state(d["r_late"], status_time=early, last_seen=at(10, 1), streaming=True, recording=True)
    world.lesson("L_main", d["r_main"], [], starts="10:00", ends="10:40")
    world.lesson("L_late", d["r_late"], [d["b_recv"]], starts="10:00", ends="10:40")
    world.event(d["r_late"], "stream_start", at(10, 0), "L_late")
    create_maintenance(db, "school", s["quiet"], at(9, 0), at(10, 25), "换网线")
    create_silence(db, ends_at=at(10, 30), reason="已报修", created_by="ops", starts_at=at(9, 0),
                   scope_level="school", scope_code=s["video"])
    set_override(db, "device_offline", "school", s["tuned"], {"enabled": False})
    return {**d, "schools": s}


# --- what changes between the cycles --------------------------------------------------------------

def nothing(world, d) -> None:
    """The clock moves; nothing else."""


def morning_news(world, d) -> None:
    """A board back, one dropped off, the net school's gateway down, a lesson's stream stopped."""
    world.state(d["b_back"], status_time=at(10, 4), last_seen=at(10, 4))
    world.offline(d["b_drop"], at(10, 4))
    world.offline(d["g_net"], at(10, 5))
    world.offline(d["b_net"], at(10, 5))
    world.state(d["r_late"], status_time=at(7, 40), last_seen=at(10, 5), streaming=False, recording=True)
    world.event(d["r_late"], "stream_stop", at(10, 5), "L_late")


def fixes(world, d) -> None:
    """The idle board used, the bad gateway's loss cured, the camera back, an override removed."""
    world.state(d["b_idle"], status_time=at(7, 40), last_seen=at(10, 9),
                last_values={"kind": "board", "active_use_s": 5600})
    world.state(d["g_bad"], status_time=at(7, 40), last_seen=at(10, 9),
                last_values=gateway_values(rx_mbps=950, loss_pct=0.2, latency_ms=150, aps_online=10))
    world.state(d["r_cam"], status_time=at(7, 40), last_seen=at(10, 9), streaming=True, recording=True,
                last_values={"kind": "recorder", "storage_free_gb": 20, "cameras": cameras()})
    set_override(world.db, "device_offline", "school", d["schools"]["tuned"], {})


def gateway_back(world, d) -> None:
    """The net school's gateway back (its board stays down, and loses its cause)."""
    world.state(d["g_net"], status_time=at(10, 19), last_seen=at(10, 19))


def moves(world, d) -> None:
    """A device moved to another room."""
    world.db.execute("UPDATE device SET room = '新教室' WHERE id = %s", (d["b_moved"],))
    world.offline(d["b_moved"], at(10, 20))


STEPS = (  # (when, what changed just before, whether every per-device check must look at every device)
    (at(9, 55), nothing, True),       # the first cycle; out of lesson time for device_offline
    (at(10, 2), nothing, False),      # the lesson period opens: device_offline's hours changed
    (at(10, 4), nothing, False),      # nothing changed: no device is looked at, the open alerts stay
    (at(10, 8), morning_news, False),
    (at(10, 12), fixes, False),
    (at(10, 16), nothing, False),     # the hot board's reading is stale now: its alert resolves
    (at(10, 19), gateway_back, False),  # a cause resolves: the board's alert stands alone
    (at(10, 22), moves, True),        # a registry write: everything again
    (at(10, 26), nothing, False),     # the maintenance window ended at 10:25
    (at(10, 31), nothing, False),     # the silence ended at 10:30
    (at(10, 35), nothing, False),
    (at(10, 42), nothing, False),     # the break: pending offline alerts drop
    (at(10, 53), nothing, False),     # the next period
    (at(10, 5, day=1), nothing, False),  # the next day: the school days counted back have moved
)


def test_the_incremental_cycle_leaves_the_alerts_the_whole_fleet_does(world):
    d = province(world)
    calendar = load_calendar(world.db)
    seen_rules, incremental_steps = set(), 0
    for when, change, first in STEPS:
        change(world, d)
        expected = rolled_back(world.db, lambda when=when: reference_cycle(world.db, when, calendar))
        whole = rolled_back(world.db, lambda when=when: run_cycle(world.db, when, calendar, full=True))
        result = run_cycle(world.db, when, calendar)
        got = alerts(world.db)
        assert got == expected, f"{when:%d %H:%M}: incremental != reference\n{_diff(got, expected)}"
        assert whole == expected, f"{when:%d %H:%M}: full != reference\n{_diff(whole, expected)}"
        if first:
            assert "offline" in result.whole_fleet
        elif not result.whole_fleet:
            incremental_steps += 1
            assert result.candidates < len(d)
        seen_rules |= {row[0] for row in got}
    assert incremental_steps >= 4
    every_rule = {"device_offline", "gateway_offline", "lesson_not_started", "receivers_not_joined",
                  "stream_dropped", "camera_lost", "storage_low", "dropped_frames_high", "video_brightness",
                  "video_frozen", "board_overheat", "board_disk_full", "board_error_codes", "board_unused",
                  "uplink_saturated", "network_loss", "network_latency", "aps_offline", "flapping"}
    assert every_rule <= seen_rules, f"never raised: {every_rule - seen_rules}"
    states = {row[4] for row in got}
    assert {"firing", "resolved"} <= states


def test_a_device_changed_without_an_alert_is_looked_at(world):
    """The incremental path's own promise: a state written after the last evaluation is news."""
    school = world.school()
    board = world.registry.device(school, "board")
    world.state(board, status_time=at(7, 40), last_seen=at(10, 1))
    calendar = load_calendar(world.db)
    assert run_cycle(world.db, at(10, 2), calendar).whole_fleet  # the first: every device
    quiet = run_cycle(world.db, at(10, 3), calendar)
    assert quiet.whole_fleet == [] and quiet.candidates == 0 and world.alerts() == []
    world.offline(board, at(10, 3))
    changed = run_cycle(world.db, at(10, 4), calendar)
    assert changed.whole_fleet == [] and changed.candidates >= 1
    assert [(a["rule_id"], a["state"]) for a in world.alerts()] == [("device_offline", "pending")]


def test_the_service_looks_at_every_device_on_start_and_now_and_then(world, broker, database_url):
    """Whatever the bookkeeping says: the first cycle of a process, then every `full_every_s`."""
    service = PatrolService(platform_settings(), PatrolSettings(full_every_s=3600))
    service.pool = open_pool(database_url, min_size=1, max_size=1, name="patrol-test")
    try:
        first = service.cycle(at(10, 2))
        second = service.cycle(at(10, 3))
        service._last_full -= 3600  # an hour later
        third = service.cycle(at(10, 4))
    finally:
        service.pool.close()
    assert "offline" in first.whole_fleet and second.whole_fleet == [] and "offline" in third.whole_fleet


def _diff(got: list[tuple], expected: list[tuple]) -> str:
    only_got = [json.dumps(r, default=str, ensure_ascii=False) for r in got if r not in expected]
    only_expected = [json.dumps(r, default=str, ensure_ascii=False) for r in expected if r not in got]
    return "only here: " + "\n".join(only_got) + "\nonly in the reference: " + "\n".join(only_expected)
