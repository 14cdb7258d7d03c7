"""The patrol's checks: set-based SQL over every device, one statement per check.

Each check is a SELECT of the conditions true right now, as rows of
(rule_id, device_id, school_code, detail, since, severity): `since` is when the
condition began when the data tells (else NULL: now), `severity` overrides the rule's
own (NULL: the rule's). Thresholds come from the rule's params, overridden per scope
through `patrol_params` (the rows of the `patrol_school_params` view, which the engine
reads once per cycle into this temporary table: patrol/engine.py, `load_params`):

    coalesce(p.params, %(defaults)s::jsonb -> 'rule_id') ->> 'threshold'

Query parameters every check receives: now, tz, today (local date), local_time,
school_day (bool), recent_school_days (date[], newest first, before today) and
defaults ({rule_id: params}). Whether a rule counts at this hour (school hours,
lessons), maintenance windows and silences are the engine's business, not the checks'.

A check marked `per_device` may be evaluated for part of the fleet: the devices whose state
changed since its rules were last evaluated (patrol/engine.py); a device left out keeps the rows
it gave last time, and its open alerts stay as they are. It promises that a device's rows follow
from that device's own `device_state` row, its registry row, its readings at its `last_seen` and
the rules' params, and nothing else: not the clock. Two exceptions are declared: query
parameters named in `clock` (when one of their values moves, the engine evaluates the whole
fleet again), and `expires`, a check whose rows the clock can take away (a reading grown
stale): the devices with one of its alerts open are looked at every time. Such a check reads
the device state from `{device_state}` (the whole table, or only those devices' rows), so its
other braces are doubled (`'{{}}'`); the other checks are plain SQL, read over the whole fleet
every time.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """One SQL statement producing the current conditions of one or more rules."""

    name: str
    rules: tuple[str, ...]
    sql: str
    per_device: bool = False  # see the module's docstring
    clock: tuple[str, ...] = ()  # query parameters besides the device state whose change matters
    expires: bool = False  # the clock can end a row: devices with an alert open are looked at again


_DEVICE_OFFLINE = """
SELECT CASE WHEN d.kind = 'gateway' THEN 'gateway_offline' ELSE 'device_offline' END AS rule_id,
       d.id AS device_id, d.school_code,
       jsonb_build_object('kind', d.kind, 'room', d.room, 'offline_since', st.status_time) AS detail,
       coalesce(st.status_time, st.last_seen) AS since, NULL::text AS severity
FROM {device_state} st JOIN device d ON d.id = st.device_id
WHERE NOT st.online AND coalesce(st.status_time, st.last_seen) IS NOT NULL
"""

# The remote lessons whose slot is running now (school days only, local time).
_LESSONS = """
WITH slot AS (
    SELECT l.id AS lesson_id, l.subject, l.main_device_id,
           (%(today)s::date + l.starts_at) AT TIME ZONE %(tz)s AS s_start,
           (%(today)s::date + l.ends_at) AT TIME ZONE %(tz)s AS s_end
    FROM remote_lesson l
    WHERE %(school_day)s AND l.weekday = extract(isodow FROM %(today)s::date)
      AND %(today)s::date BETWEEN l.valid_from AND l.valid_until
      AND %(local_time)s::time >= l.starts_at AND %(local_time)s::time < l.ends_at
), main AS (
    SELECT sl.*, d.school_code, d.room,
           coalesce(st.online AND st.streaming, false) AS streaming_now,
           EXISTS (SELECT 1 FROM device_event e
                   WHERE e.lesson_id = sl.lesson_id AND e.device_id = sl.main_device_id
                     AND e.type = 'stream_start' AND e.time >= sl.s_start - interval '30 minutes'
                     AND e.time < sl.s_end)
           OR EXISTS (SELECT 1 FROM recorder_telemetry r
                      WHERE r.device_id = sl.main_device_id AND r.time >= sl.s_start - interval '30 minutes'
                        AND r.streaming AND r.lesson_id = sl.lesson_id) AS started
    FROM slot sl JOIN device d ON d.id = sl.main_device_id
    LEFT JOIN device_state st ON st.device_id = sl.main_device_id
)
SELECT 'lesson_not_started' AS rule_id, m.main_device_id AS device_id, m.school_code,
       jsonb_build_object('lesson_id', m.lesson_id, 'subject', m.subject, 'room', m.room,
                          'scheduled_start', m.s_start) AS detail,
       m.s_start + make_interval(mins => (prm ->> 'grace_min')::int) AS since, NULL::text AS severity
FROM main m
LEFT JOIN patrol_params p ON p.rule_id = 'lesson_not_started' AND p.school_code = m.school_code
CROSS JOIN LATERAL (SELECT coalesce(p.params, %(defaults)s::jsonb -> 'lesson_not_started') AS prm) AS x
WHERE NOT m.streaming_now AND NOT m.started
  AND %(now)s >= m.s_start + make_interval(mins => (prm ->> 'grace_min')::int)
UNION ALL
SELECT 'stream_dropped' AS rule_id, m.main_device_id AS device_id, m.school_code,
       jsonb_build_object('lesson_id', m.lesson_id, 'subject', m.subject, 'room', m.room) AS detail,
       (SELECT max(e.time) FROM device_event e
        WHERE e.device_id = m.main_device_id AND e.type = 'stream_stop' AND e.time >= m.s_start) AS since,
       NULL::text AS severity
FROM main m
WHERE m.started AND NOT m.streaming_now
UNION ALL
SELECT 'receivers_not_joined' AS rule_id, rr.device_id, d.school_code,
       jsonb_build_object('lesson_id', m.lesson_id, 'subject', m.subject, 'class_name', rr.class_name,
                          'main_device_id', m.main_device_id) AS detail,
       m.s_start + make_interval(mins => (prm ->> 'grace_min')::int) AS since, NULL::text AS severity
FROM main m
JOIN remote_lesson_receiver rr ON rr.lesson_id = m.lesson_id
JOIN device d ON d.id = rr.device_id
LEFT JOIN patrol_params p ON p.rule_id = 'receivers_not_joined' AND p.school_code = d.school_code
CROSS JOIN LATERAL (SELECT coalesce(p.params, %(defaults)s::jsonb -> 'receivers_not_joined') AS prm) AS x
WHERE (m.started OR m.streaming_now)
  AND %(now)s >= m.s_start + make_interval(mins => (prm ->> 'grace_min')::int)
  AND NOT EXISTS (SELECT 1 FROM device_event e
                  WHERE e.lesson_id = m.lesson_id AND e.device_id = rr.device_id AND e.type = 'lesson_start'
                    AND e.time >= m.s_start - make_interval(mins => (prm ->> 'early_min')::int)
                    AND e.time < m.s_end)
"""

# Recorders: the latest reading is in device_state.last_values (cameras, storage).
_RECORDER_HEALTH = """
WITH rec AS (
    SELECT d.id, d.school_code, d.room, st.last_values AS lv, st.recording OR st.streaming AS busy,
           coalesce(p1.params, %(defaults)s::jsonb -> 'storage_low') AS p_storage,
           coalesce(p2.params, %(defaults)s::jsonb -> 'video_brightness') AS p_bright,
           coalesce(p3.params, %(defaults)s::jsonb -> 'video_frozen') AS p_frozen
    FROM {device_state} st JOIN device d ON d.id = st.device_id
    LEFT JOIN patrol_params p1 ON p1.rule_id = 'storage_low' AND p1.school_code = d.school_code
    LEFT JOIN patrol_params p2 ON p2.rule_id = 'video_brightness' AND p2.school_code = d.school_code
    LEFT JOIN patrol_params p3 ON p3.rule_id = 'video_frozen' AND p3.school_code = d.school_code
    WHERE d.kind = 'recorder' AND st.online
)
SELECT 'camera_lost', id, school_code,
       jsonb_build_object('room', room, 'cameras', (SELECT jsonb_agg(c ->> 'role')
           FROM jsonb_array_elements(lv -> 'cameras') AS c WHERE NOT (c ->> 'online')::boolean)),
       NULL::timestamptz, NULL::text
FROM rec WHERE lv @> '{{"cameras": [{{"online": false}}]}}'
UNION ALL
SELECT 'storage_low', id, school_code,
       jsonb_build_object('room', room, 'storage_free_gb', lv -> 'storage_free_gb'), NULL, NULL
FROM rec WHERE (lv ->> 'storage_free_gb')::real < (p_storage ->> 'min_free_gb')::real
UNION ALL
SELECT 'video_brightness', id, school_code, jsonb_build_object('room', room, 'cameras', bad), NULL, NULL
FROM rec CROSS JOIN LATERAL (
    SELECT jsonb_agg(jsonb_build_object('role', c ->> 'role', 'brightness', c -> 'brightness')) AS bad
    FROM jsonb_array_elements(lv -> 'cameras') AS c
    WHERE (c ->> 'online')::boolean AND ((c ->> 'brightness')::real < (p_bright ->> 'min')::real
                                         OR (c ->> 'brightness')::real > (p_bright ->> 'max')::real)) AS x
WHERE busy AND bad IS NOT NULL
UNION ALL
SELECT 'video_frozen', id, school_code, jsonb_build_object('room', room, 'cameras', bad), NULL, NULL
FROM rec CROSS JOIN LATERAL (
    SELECT jsonb_agg(jsonb_build_object('role', c ->> 'role', 'frozen_frames', c -> 'frozen_frames')) AS bad
    FROM jsonb_array_elements(lv -> 'cameras') AS c
    WHERE (c ->> 'online')::boolean AND (c ->> 'frozen_frames')::int >= (p_frozen ->> 'frames')::int) AS x
WHERE busy AND bad IS NOT NULL
"""

_DROPPED_FRAMES = """
SELECT 'dropped_frames_high', d.id, d.school_code,
       jsonb_build_object('room', d.room, 'dropped', w.dropped, 'window_min', (prm ->> 'window_min')::int),
       NULL::timestamptz, NULL::text
FROM device_state st JOIN device d ON d.id = st.device_id
LEFT JOIN patrol_params p ON p.rule_id = 'dropped_frames_high' AND p.school_code = d.school_code
CROSS JOIN LATERAL (SELECT coalesce(p.params, %(defaults)s::jsonb -> 'dropped_frames_high') AS prm) AS x
CROSS JOIN LATERAL (
    SELECT max(r.dropped_frames) - min(r.dropped_frames) AS dropped FROM recorder_telemetry r
    WHERE r.device_id = d.id AND r.time >= %(now)s - make_interval(mins => (prm ->> 'window_min')::int)) AS w
WHERE d.kind = 'recorder' AND st.online AND st.streaming AND w.dropped >= (prm ->> 'frames')::bigint
"""

# Boards: the reading at last_seen, looked up by index, judged for three rules at once.
_BOARD_HEALTH = """
WITH b AS (
    SELECT d.id, d.school_code, d.room, t.cpu_temp_c, t.disk_used_pct, t.error_codes,
           coalesce(p1.params, %(defaults)s::jsonb -> 'board_overheat') AS p_heat,
           coalesce(p2.params, %(defaults)s::jsonb -> 'board_disk_full') AS p_disk
    FROM {device_state} st JOIN device d ON d.id = st.device_id
    JOIN board_telemetry t ON t.device_id = st.device_id AND t.time = st.last_seen
    LEFT JOIN patrol_params p1 ON p1.rule_id = 'board_overheat' AND p1.school_code = d.school_code
    LEFT JOIN patrol_params p2 ON p2.rule_id = 'board_disk_full' AND p2.school_code = d.school_code
    WHERE d.kind = 'board' AND st.online AND st.last_seen >= %(now)s - interval '15 minutes'
)
SELECT 'board_overheat', id, school_code, jsonb_build_object('room', room, 'cpu_temp_c', cpu_temp_c),
       NULL::timestamptz, NULL::text
FROM b WHERE cpu_temp_c > (p_heat ->> 'max_temp_c')::real
UNION ALL
SELECT 'board_disk_full', id, school_code, jsonb_build_object('room', room, 'disk_used_pct', disk_used_pct),
       NULL, NULL
FROM b WHERE disk_used_pct >= (p_disk ->> 'max_used_pct')::real
UNION ALL
SELECT 'board_error_codes', id, school_code, jsonb_build_object('room', room, 'error_codes', error_codes),
       NULL, NULL
FROM b WHERE cardinality(error_codes) > 0
"""

# A board whose active-use counter has not moved since the start of the Nth last school day.
_BOARD_UNUSED = """
SELECT 'board_unused', d.id, d.school_code,
       jsonb_build_object('room', d.room, 'school_days', (prm ->> 'school_days')::int, 'since_day', c.day),
       (c.day::timestamp AT TIME ZONE %(tz)s), NULL::text
FROM device d JOIN {device_state} st ON st.device_id = d.id
LEFT JOIN patrol_params p ON p.rule_id = 'board_unused' AND p.school_code = d.school_code
CROSS JOIN LATERAL (SELECT coalesce(p.params, %(defaults)s::jsonb -> 'board_unused') AS prm) AS x
CROSS JOIN LATERAL (SELECT (%(recent_school_days)s::date[])[(prm ->> 'school_days')::int] AS day) AS c
CROSS JOIN LATERAL (
    SELECT t.active_use_s FROM board_telemetry t
    WHERE t.device_id = d.id AND t.time < (c.day::timestamp AT TIME ZONE %(tz)s)
    ORDER BY t.time DESC LIMIT 1) AS before
WHERE d.kind = 'board' AND c.day IS NOT NULL
  AND coalesce((st.last_values ->> 'active_use_s')::bigint, before.active_use_s) <= before.active_use_s
"""

_GATEWAY_HEALTH = """
WITH g AS (
    SELECT d.id, d.school_code, st.last_values AS lv,
           coalesce(p1.params, %(defaults)s::jsonb -> 'uplink_saturated') AS p_up,
           coalesce(p2.params, %(defaults)s::jsonb -> 'network_loss') AS p_loss,
           coalesce(p3.params, %(defaults)s::jsonb -> 'network_latency') AS p_lat,
           coalesce(p4.params, %(defaults)s::jsonb -> 'aps_offline') AS p_aps
    FROM {device_state} st JOIN device d ON d.id = st.device_id
    LEFT JOIN patrol_params p1 ON p1.rule_id = 'uplink_saturated' AND p1.school_code = d.school_code
    LEFT JOIN patrol_params p2 ON p2.rule_id = 'network_loss' AND p2.school_code = d.school_code
    LEFT JOIN patrol_params p3 ON p3.rule_id = 'network_latency' AND p3.school_code = d.school_code
    LEFT JOIN patrol_params p4 ON p4.rule_id = 'aps_offline' AND p4.school_code = d.school_code
    WHERE d.kind = 'gateway' AND st.online
)
SELECT 'uplink_saturated', id, school_code,
       jsonb_build_object('rx_mbps', lv -> 'rx_mbps', 'uplink_mbps', lv -> 'uplink_mbps'), NULL::timestamptz,
       NULL::text
FROM g WHERE (lv ->> 'rx_mbps')::real >= (p_up ->> 'share')::real * (lv ->> 'uplink_mbps')::real
UNION ALL
SELECT 'network_loss', id, school_code, jsonb_build_object('loss_pct', lv -> 'loss_pct'), NULL,
       CASE WHEN (lv ->> 'loss_pct')::real >= (p_loss ->> 'major')::real THEN 'major' ELSE 'warning' END
FROM g WHERE (lv ->> 'loss_pct')::real >= (p_loss ->> 'warning')::real
UNION ALL
SELECT 'network_latency', id, school_code, jsonb_build_object('latency_ms', lv -> 'latency_ms'), NULL,
       CASE WHEN (lv ->> 'latency_ms')::real >= (p_lat ->> 'major')::real THEN 'major' ELSE 'warning' END
FROM g WHERE (lv ->> 'latency_ms')::real >= (p_lat ->> 'warning')::real
UNION ALL
SELECT 'aps_offline', id, school_code,
       jsonb_build_object('aps_total', lv -> 'aps_total', 'aps_online', lv -> 'aps_online'), NULL, NULL
FROM g WHERE (lv ->> 'aps_total')::int - (lv ->> 'aps_online')::int >= (p_aps ->> 'min_offline')::int
         AND (lv ->> 'aps_total')::int - (lv ->> 'aps_online')::int
             >= (p_aps ->> 'share')::real * (lv ->> 'aps_total')::int
"""

# Scans the default window; a scope may lower or raise the number of changes, not the window.
_FLAPPING = """
SELECT 'flapping', d.id, d.school_code,
       jsonb_build_object('room', d.room, 'changes', c.changes,
                          'window_min', (%(defaults)s::jsonb #>> '{flapping,window_min}')::int),
       NULL::timestamptz, NULL::text
FROM (SELECT device_id, count(*) AS changes FROM device_status_change
      WHERE time >= %(now)s - make_interval(mins => (%(defaults)s::jsonb #>> '{flapping,window_min}')::int)
        AND time <= %(now)s
      GROUP BY device_id) AS c
JOIN device d ON d.id = c.device_id
LEFT JOIN patrol_params p ON p.rule_id = 'flapping' AND p.school_code = d.school_code
WHERE c.changes >= (coalesce(p.params, %(defaults)s::jsonb -> 'flapping') ->> 'changes')::int
"""

# 智能巡课: a remote lesson running by the timetable whose main or receiving classroom's latest still of a
# camera — taken during the lesson, at most max_age_min old — shows one of `problems` (the snapshot intake
# judged it: patrol/video_health.py). One row per classroom; `major` problems make it major, the others
# a warning. Since: when the camera's run of stills with a problem began.
_LESSON_VIDEO = """
WITH slot AS (
    SELECT l.id AS lesson_id, l.kind, l.subject, l.main_device_id,
           (%(today)s::date + l.starts_at) AT TIME ZONE %(tz)s AS s_start
    FROM remote_lesson l
    WHERE %(school_day)s AND l.weekday = extract(isodow FROM %(today)s::date)
      AND %(today)s::date BETWEEN l.valid_from AND l.valid_until
      AND %(local_time)s::time >= l.starts_at AND %(local_time)s::time < l.ends_at
), room AS (
    SELECT DISTINCT ON (device_id) * FROM (
        SELECT lesson_id, kind, subject, s_start, main_device_id AS device_id, 'main' AS role FROM slot
        UNION ALL
        SELECT s.lesson_id, s.kind, s.subject, s.s_start, r.device_id, 'receiving'
        FROM slot s JOIN remote_lesson_receiver r ON r.lesson_id = s.lesson_id) AS rooms
    ORDER BY device_id, role
), bad AS (
    SELECT rm.lesson_id, rm.kind, rm.subject, rm.role, rm.device_id, d.school_code, d.room, c.camera, c.snapshot_id,
           c.problems, c.problem_since, c.problems && ARRAY(SELECT jsonb_array_elements_text(prm -> 'major')) AS major
    FROM room rm JOIN device d ON d.id = rm.device_id
    JOIN snapshot_camera c ON c.device_id = rm.device_id
    LEFT JOIN patrol_params p ON p.rule_id = 'lesson_video_bad' AND p.school_code = d.school_code
    CROSS JOIN LATERAL (SELECT coalesce(p.params, %(defaults)s::jsonb -> 'lesson_video_bad') AS prm) AS x
    WHERE c.taken_at >= greatest(rm.s_start, %(now)s - make_interval(mins => (prm ->> 'max_age_min')::int))
      AND c.problems && ARRAY(SELECT jsonb_array_elements_text(prm -> 'problems'))
)
SELECT 'lesson_video_bad', device_id, school_code,
       jsonb_build_object('lesson_id', lesson_id, 'kind', kind, 'subject', subject, 'role', role, 'room', room,
                          'cameras', jsonb_agg(jsonb_build_object('camera', camera, 'problems', problems,
                                                                  'snapshot_id', snapshot_id) ORDER BY camera)),
       min(problem_since), CASE WHEN bool_or(major) THEN 'major' ELSE 'warning' END
FROM bad GROUP BY lesson_id, kind, subject, role, device_id, school_code, room
"""

CHECKS: tuple[Check, ...] = (
    Check("offline", ("device_offline", "gateway_offline"), _DEVICE_OFFLINE, per_device=True),
    Check("lessons", ("lesson_not_started", "stream_dropped", "receivers_not_joined"), _LESSONS),
    Check("recorder_health", ("camera_lost", "storage_low", "video_brightness", "video_frozen"),
          _RECORDER_HEALTH, per_device=True),
    Check("dropped_frames", ("dropped_frames_high",), _DROPPED_FRAMES),
    # the 15 minutes a reading stays fresh only ever end a condition
    Check("board_health", ("board_overheat", "board_disk_full", "board_error_codes"), _BOARD_HEALTH,
          per_device=True, expires=True),
    # the school days counted back move once a day: then the whole fleet
    Check("board_unused", ("board_unused",), _BOARD_UNUSED, per_device=True, clock=("recent_school_days",)),
    Check("gateway_health", ("uplink_saturated", "network_loss", "network_latency", "aps_offline"),
          _GATEWAY_HEALTH, per_device=True),
    Check("flapping", ("flapping",), _FLAPPING),
    Check("lesson_video", ("lesson_video_bad",), _LESSON_VIDEO),
)


def checks_for(rule_ids: set[str]) -> list[Check]:
    """The checks that evaluate at least one of the given rules."""
    return [c for c in CHECKS if rule_ids.intersection(c.rules)]
