"""The catalogue of figures: each one's formula lives here and only here.

A figure's SQL gives one row per child scope with a numerator and a denominator. The scope's
own value combines the children's rows with the figure's aggregation (a ratio of
sums, a sum, or a maximum), so a province figure is exactly the combination of its
cities'. Figures that share a template and filter are computed in one query. `{child}`,
`{columns}` and `{where}` are filled with the child key, the figures' numerators and
denominators, and the scope/user bound (api/scopes/access.py); every value is a bound
parameter.

Asked over a period (`period=`/`from=`/`to=`, core/period.py), a figure answers with its
`over` formula instead: the same shape (a numerator and a denominator per child, combined
the same way), read from the rollups over the period's days. Its parameters are the
period's `%(p_start)s`, `%(p_end)s` (local midnights), `%(p_until)s` (what it runs up to),
`%(p_minutes)s` (minutes from start to until), `%(p_school_days)s` (school days begun) and
`%(p_last_day)s` (the local midnight of the last day begun: no day after it counts, even where a
device's clock ran ahead into tomorrow).

Asked through the lesson-hours lens (`hours=lessons`), a figure that has one answers with its
`lessons` formula: the same numerator and denominator, counting only the lesson hours of the
period's school days (core/calendar.py LESSON_HOURS).
"""

from dataclasses import dataclass
from typing import Literal

Aggregation = Literal["ratio", "sum", "max"]
Unit = Literal["ratio", "count", "hours", "percent", "ms", "mbps"]

_DEVICES = """
SELECT {child} AS child, {columns}
FROM school s JOIN device d ON d.school_code = s.code LEFT JOIN device_state st ON st.device_id = d.id
WHERE {where} {extra} GROUP BY 1
"""

# "Now" counts per school and kind, kept fresh by rollups/school_now.py.
_NOW = """
SELECT {child} AS child, {columns}
FROM school s JOIN school_now n ON n.school_code = s.code
WHERE {where} {extra} GROUP BY 1
"""

_SCHOOLS = """
SELECT {child} AS child, {columns}
FROM school s LEFT JOIN device g ON g.school_code = s.code AND g.kind = 'gateway'
LEFT JOIN device_state gs ON gs.device_id = g.id
WHERE {where} GROUP BY 1
"""

# Board use over the last school days, from the school rollups. %(since)s is the start of
# the window (METRICS_USE_WINDOW_DAYS calendar days), %(school_days)s how many were school days.
_SCHOOL_USE = """
SELECT {child} AS child, {columns}
FROM school s JOIN school_now n ON n.school_code = s.code AND n.kind = 'board'
LEFT JOIN (SELECT school_code, sum(active_use_s) AS use_s, sum(powered_on_minutes) AS on_min,
                  sum(devices_active) FILTER (WHERE bucket >= %(today)s) AS active_today
           FROM school_daily WHERE kind = 'board' AND bucket >= %(since)s GROUP BY school_code) u
       ON u.school_code = s.code
WHERE {where} GROUP BY 1
"""

# Per board over the window: only for figures that need each board's own history.
_BOARD_USE = """
SELECT {child} AS child, {columns}
FROM school s JOIN device d ON d.school_code = s.code AND d.kind = 'board'
LEFT JOIN (SELECT device_id, sum(active_use_s) AS use_s FROM device_daily
           WHERE bucket >= %(since)s AND kind = 'board' GROUP BY device_id) u ON u.device_id = d.id
WHERE {where} GROUP BY 1
"""

# The last week of a kind's school rollups, for the schools that have that kind of device: one that
# recorded (or carried traffic) on none of those days counts 0, one without such devices nothing.
_SCHOOL_DAILY = """
SELECT {child} AS child, {columns}
FROM school s JOIN school_now n ON n.school_code = s.code AND n.kind = {extra}
LEFT JOIN school_daily r ON r.school_code = s.code AND r.kind = {extra} AND r.bucket >= %(since_week)s
WHERE {where} GROUP BY 1
"""


# Over a period, per school and device kind: the devices in service at the period's end and
# their in-service device-minutes over it (in service from in_service_since(), sql/023: its
# installation day or its registration, whichever came first, to the hour), and the school
# rollups of the period's days. A school and kind counts if it has devices in service or rollups
# in the period; the rollups count only in-service hours, so online minutes never exceed
# in-service ones and every sum here adds up from schools to counties to the province.
_PERIOD_REG = """
reg AS (SELECT d.school_code, d.kind, count(*) AS devices,
               sum(date_part('epoch', %(p_until)s - greatest(%(p_start)s, i.since)) / 60.0) AS device_minutes
        FROM device d JOIN sc ON sc.code = d.school_code
        CROSS JOIN LATERAL (SELECT in_service_since(d.registered_at, d.installed_on, %(tz)s) AS since) i
        WHERE i.since < %(p_until)s GROUP BY 1, 2)"""

# Every school and kind with devices in service or rollups in the period, and its devices (NULL
# without): `n` in the formulas.
_PERIOD_KEYS = """
n AS (SELECT k.school_code, k.kind, g.devices, g.device_minutes
      FROM (SELECT school_code, kind FROM reg UNION SELECT school_code, kind FROM roll) k
      LEFT JOIN reg g ON g.school_code = k.school_code AND g.kind = k.kind)
SELECT sc.child AS child, {columns}
FROM sc JOIN n ON n.school_code = sc.code
LEFT JOIN roll r ON r.school_code = n.school_code AND r.kind = n.kind
GROUP BY 1
"""

_PERIOD_SCHOOLS = """
WITH sc AS (SELECT s.code, {child} AS child FROM school s WHERE {where}),""" + _PERIOD_REG + """,
roll AS (SELECT r.school_code, r.kind, sum(r.online_minutes) AS online_min, sum(r.active_use_s) AS use_s,
                sum(r.powered_on_minutes) AS on_min, sum(r.recording_minutes) AS rec_min,
                sum(r.streaming_minutes) AS stream_min, max(r.utilisation_max) AS util_max,
                CASE WHEN sum(r.online_minutes) FILTER (WHERE r.latency_avg IS NOT NULL) > 0
                     THEN sum((r.latency_avg * r.online_minutes)::numeric) END AS latency_w,
                nullif(sum(r.online_minutes) FILTER (WHERE r.latency_avg IS NOT NULL), 0) AS latency_n,
                sum(r.loss_avg * r.online_minutes) AS loss_w,
                sum(r.online_minutes) FILTER (WHERE r.loss_avg IS NOT NULL) AS loss_n
         FROM school_daily r JOIN sc ON sc.code = r.school_code
         WHERE r.bucket >= %(p_start)s AND r.bucket <= %(p_last_day)s GROUP BY 1, 2),""" + _PERIOD_KEYS  # noqa: S608

# Over a period, per device in service at its end: whether it sent anything, was used, streamed or
# recorded on any of the period's days. Only for figures that count devices by their own history;
# each flag is an EXISTS on device_daily's key (device, day), stopping at the first day that
# answers it, and the planner evaluates only the flags the figures asked for use.
_PERIOD_DEVICES = """
WITH sc AS (SELECT s.code, {child} AS child FROM school s WHERE {where})
SELECT dev.child AS child, {columns}
FROM (SELECT d.kind, sc.child,
             EXISTS (SELECT 1 FROM device_daily r WHERE r.device_id = d.id AND r.bucket >= %(p_start)s
                     AND r.bucket <= %(p_last_day)s AND r.readings > 0) AS seen,
             EXISTS (SELECT 1 FROM device_daily r WHERE r.device_id = d.id AND r.bucket >= %(p_start)s
                     AND r.bucket <= %(p_last_day)s AND r.active_use_s > 0) AS used,
             EXISTS (SELECT 1 FROM device_daily r WHERE r.device_id = d.id AND r.bucket >= %(p_start)s
                     AND r.bucket <= %(p_last_day)s AND r.streaming_minutes > 0) AS streamed,
             EXISTS (SELECT 1 FROM device_daily r WHERE r.device_id = d.id AND r.bucket >= %(p_start)s
                     AND r.bucket <= %(p_last_day)s AND r.recording_minutes > 0) AS recorded
      FROM device d JOIN sc ON sc.code = d.school_code
      WHERE in_service_since(d.registered_at, d.installed_on, %(tz)s) < %(p_until)s) dev
GROUP BY 1
"""

# The lesson-hours lens over a period (`hours=lessons`): the same shape as _PERIOD_SCHOOLS, but
# only the lesson hours of the period's school days count (core/calendar.py LESSON_HOURS; their UTC
# starts up to `until` are %(l_hours)s, their minutes %(l_minutes)s, the school days' local midnights
# %(l_days)s). A device in service since before the period is in service for all %(l_minutes)s; one
# that came into service during it, for the lesson minutes after that. The rollups keep each school
# day's lesson-hour sums (sql/022_lesson_hours.sql).
_LESSON_REG = """
reg AS (SELECT d.school_code, d.kind, count(*) AS devices,
               sum(CASE WHEN i.since <= %(p_start)s THEN %(l_minutes)s::float8
                        ELSE (SELECT coalesce(sum(greatest(0, date_part('epoch', least(b + interval '1 hour', %(p_until)s)
                                                                        - greatest(b, i.since)) / 60.0)), 0)
                              FROM unnest(%(l_hours)s::timestamptz[]) b) END) AS device_minutes
        FROM device d JOIN sc ON sc.code = d.school_code
        CROSS JOIN LATERAL (SELECT in_service_since(d.registered_at, d.installed_on, %(tz)s) AS since) i
        WHERE i.since < %(p_until)s GROUP BY 1, 2)"""

_PERIOD_LESSONS = """
WITH sc AS (SELECT s.code, {child} AS child FROM school s WHERE {where}),""" + _LESSON_REG + """,
roll AS (SELECT r.school_code, r.kind, sum(r.lesson_online_minutes) AS online_min,
                sum(r.lesson_active_use_s) AS use_s, sum(r.lesson_powered_on_minutes) AS on_min,
                sum(r.lesson_recording_minutes) AS rec_min, sum(r.lesson_streaming_minutes) AS stream_min
         FROM school_daily r JOIN sc ON sc.code = r.school_code
         WHERE r.bucket = ANY(%(l_days)s::timestamptz[]) GROUP BY 1, 2),""" + _PERIOD_KEYS  # noqa: S608

# The same two over the counties' running totals (sql/023_county_cube.sql), for a province or a city:
# `{child}` and `{where}` over the county table `c`. The sums of the period's days are the totals at
# its last day begun (%(p_last_day)s) less those before it; `days` says whether any school had rollups
# in it. The same rows come out per county and kind as the per-school templates give per school
# and kind, so the formulas are the same.
_CUBE_FLEET = """
WITH cc AS (SELECT c.code AS county_code, {child} AS child FROM county c WHERE {where}),
fleet AS (SELECT f.county_code, f.kind, f.devices, least(f.registered_hour, z.at) AS since
          FROM county_fleet f JOIN cc ON cc.county_code = f.county_code
          LEFT JOIN (SELECT i.installed_on, date_trunc('hour', i.installed_on::timestamp AT TIME ZONE %(tz)s, 'UTC') AS at
                     FROM (SELECT DISTINCT installed_on FROM county_fleet WHERE installed_on < 'infinity') i) z
               ON z.installed_on = f.installed_on),"""  # a day's midnight once per day, not once per row


def _cube_ends(columns: dict[str, str], days: str) -> str:
    diffs = ", ".join(f"hi.{col} - coalesce(lo.{col}, 0) AS {name}" for name, col in columns.items())
    return f"""
roll AS (SELECT cc.county_code, k.kind, hi.{days} - coalesce(lo.{days}, 0) AS days, {diffs}
         FROM cc CROSS JOIN (VALUES ('board'), ('recorder'), ('gateway')) k(kind)
         JOIN LATERAL (SELECT * FROM county_daily_cum x WHERE x.county_code = cc.county_code AND x.kind = k.kind
                       AND x.bucket <= %(p_last_day)s ORDER BY x.bucket DESC LIMIT 1) hi ON true
         LEFT JOIN LATERAL (SELECT * FROM county_daily_cum x WHERE x.county_code = cc.county_code AND x.kind = k.kind
                            AND x.bucket < %(p_start)s ORDER BY x.bucket DESC LIMIT 1) lo ON true),
n AS (SELECT k.county_code, k.kind, g.devices, g.device_minutes
      FROM (SELECT county_code, kind FROM reg UNION SELECT county_code, kind FROM roll WHERE days > 0) k
      LEFT JOIN reg g ON g.county_code = k.county_code AND g.kind = k.kind)
SELECT cc.child AS child, {{columns}}
FROM cc JOIN n ON n.county_code = cc.county_code
LEFT JOIN (SELECT * FROM roll WHERE days > 0) r ON r.county_code = n.county_code AND r.kind = n.kind
GROUP BY 1
"""  # noqa: S608 - constant SQL: the names are this module's


_CUBE_SCHOOLS = _CUBE_FLEET + """
reg AS (SELECT county_code, kind, sum(devices) AS devices,
               coalesce(sum(devices) FILTER (WHERE since <= %(p_start)s), 0) * %(p_minutes)s::float8
               + coalesce(sum(devices * date_part('epoch', %(p_until)s - since) / 60.0)
                          FILTER (WHERE since > %(p_start)s), 0) AS device_minutes
        FROM fleet WHERE since < %(p_until)s GROUP BY 1, 2),""" + _cube_ends(  # noqa: S608
    {"online_min": "online_minutes", "use_s": "active_use_s", "on_min": "powered_on_minutes",
     "rec_min": "recording_minutes", "stream_min": "streaming_minutes", "latency_w": "latency_w",
     "latency_n": "latency_n"}, "days").replace(
    "hi.latency_w - coalesce(lo.latency_w, 0) AS latency_w, hi.latency_n - coalesce(lo.latency_n, 0) AS latency_n",
    # no latency in the range: NULL, as the per-school sums of no rows are
    "CASE WHEN hi.latency_n <> coalesce(lo.latency_n, 0) THEN hi.latency_w - coalesce(lo.latency_w, 0) END "
    "AS latency_w, nullif(hi.latency_n - coalesce(lo.latency_n, 0), 0) AS latency_n")

_CUBE_LESSONS = _CUBE_FLEET + """
reg AS (SELECT county_code, kind, sum(devices) AS devices,
               sum(devices * CASE WHEN since <= %(p_start)s THEN %(l_minutes)s::float8
                   ELSE (SELECT coalesce(sum(greatest(0, date_part('epoch', least(b + interval '1 hour', %(p_until)s)
                                                                   - greatest(b, since)) / 60.0)), 0)
                         FROM unnest(%(l_hours)s::timestamptz[]) b) END) AS device_minutes
        FROM fleet WHERE since < %(p_until)s GROUP BY 1, 2),""" + _cube_ends(  # noqa: S608
    {"online_min": "lesson_online_minutes", "use_s": "lesson_active_use_s", "on_min": "lesson_powered_on_minutes",
     "rec_min": "lesson_recording_minutes", "stream_min": "lesson_streaming_minutes"}, "school_days")

# Which per-school template has a county twin, and which rollup columns the twin lacks.
CUBES = {_PERIOD_SCHOOLS: _CUBE_SCHOOLS, _PERIOD_LESSONS: _CUBE_LESSONS}
_NOT_IN_CUBE = ("util_max", "loss_w", "loss_n", "least(")


@dataclass(frozen=True)
class Over:
    """How a figure answers over a period: its numerator and denominator from the rollups."""

    template: str
    num: str
    den: str = "NULL::numeric"
    meaning: str = ""


def _kind(kind: str, alias: str = "n") -> str:
    return f"FILTER (WHERE {alias}.kind = '{kind}')"


# Online device-minutes of a school and kind (the rollups count only in-service hours).
_ONLINE_MIN = "coalesce(r.online_min, 0)"


def _availability(kind: str | None, template: str = _PERIOD_SCHOOLS) -> Over:
    only = f" {_kind(kind)}" if kind else ""
    hours = " in lesson hours" if template is _PERIOD_LESSONS else ""
    return Over(template, f"sum({_ONLINE_MIN}){only}", f"sum(n.device_minutes){only}",
                f"online device-minutes / in-service device-minutes{hours} over the period"
                + (f" ({kind}s)" if kind else ""))


def _hours(column: str, kind: str, what: str, template: str = _PERIOD_SCHOOLS) -> Over:
    hours = " in lesson hours" if template is _PERIOD_LESSONS else ""
    return Over(template, f"CASE WHEN count(*) {_kind(kind)} > 0 THEN coalesce(sum(r.{column}) {_kind(kind)}, 0) "
                f"/ 60.0 END", meaning=f"Σ {what} minutes{hours} over the period / 60 (null without {kind}s)")


_BOARD_SCHOOL_MINUTES = f"sum(n.devices) {_kind('board')} * 600.0 * %(p_school_days)s"
# Powered-on minutes count all day, the school day has 600: each school's boards are capped at their
# 600 minutes a school day, school by school, so a county's figure is the same asked as a scope or
# as a child (a cap per school needs each school: no county twin).
_BOARD_SCHOOL_ON = (f"sum(least(coalesce(r.on_min, 0), coalesce(n.devices, 0) * 600.0 * %(p_school_days)s)) "
                    f"{_kind('board')}")


@dataclass(frozen=True)
class Figure:
    """One figure the cockpit can show, rank, trend and set targets for."""

    key: str
    zh: str
    en: str
    unit: Unit
    better: Literal["higher", "lower"]
    aggregation: Aggregation
    template: str
    num: str
    den: str = "NULL::numeric"
    extra: str = ""
    description: str = ""
    over: Over | None = None  # its formula over a period; None: the figure has no history
    lessons: Over | None = None  # its formula over a period's lesson hours (hours=lessons); None: no such lens


def _f(key, zh, en, unit, better, aggregation, template, num, den="NULL::numeric", extra="", description="",
       over=None, lessons=None):
    return Figure(key, zh, en, unit, better, aggregation, template, num, den, extra, description, over, lessons)


FIGURES: dict[str, Figure] = {f.key: f for f in (
    _f("devices", "设备总数", "Devices", "count", "higher", "sum", _NOW, "sum(n.devices)",
       description="registered devices of every kind",
       over=Over(_PERIOD_SCHOOLS, "sum(n.devices)", meaning="devices in service at the period's end")),
    _f("online", "在线设备", "Online devices", "count", "higher", "sum", _NOW, "sum(n.online)",
       over=Over(_PERIOD_SCHOOLS, f"sum({_ONLINE_MIN}) / nullif(%(p_minutes)s::numeric, 0)",
                 meaning="mean devices online: online device-minutes / minutes of the period"),
       lessons=Over(_PERIOD_LESSONS, f"sum({_ONLINE_MIN}) / nullif(%(l_minutes)s::numeric, 0)",
                    meaning="mean devices online in lesson hours: their online device-minutes / lesson minutes")),
    _f("online_rate", "在线率", "Online rate", "ratio", "higher", "ratio", _NOW, "sum(n.online)", "sum(n.devices)",
       description="online devices / registered devices, now", over=_availability(None),
       lessons=_availability(None, _PERIOD_LESSONS)),
    _f("board_online_rate", "一体机在线率", "Board online rate", "ratio", "higher", "ratio", _NOW,
       "sum(n.online)", "sum(n.devices)", "AND n.kind = 'board'", over=_availability("board"),
       lessons=_availability("board", _PERIOD_LESSONS)),
    _f("recorder_online_rate", "录播在线率", "Recorder online rate", "ratio", "higher", "ratio", _NOW,
       "sum(n.online)", "sum(n.devices)", "AND n.kind = 'recorder'", over=_availability("recorder"),
       lessons=_availability("recorder", _PERIOD_LESSONS)),
    _f("gateway_online_rate", "网关在线率", "Gateway online rate", "ratio", "higher", "ratio", _NOW,
       "sum(n.online)", "sum(n.devices)", "AND n.kind = 'gateway'", over=_availability("gateway"),
       lessons=_availability("gateway", _PERIOD_LESSONS)),
    _f("silent_devices", "超一天无数据设备", "Silent over a day", "count", "lower", "sum", _DEVICES,
       "count(*) FILTER (WHERE coalesce(st.last_seen, d.registered_at) < now() - make_interval(hours => %(silent_hours)s))",
       description="devices with no message for more than METRICS_SILENT_HOURS (24) hours",
       over=Over(_PERIOD_DEVICES, "count(*) FILTER (WHERE NOT dev.seen)",
                 meaning="devices in service at the period's end that sent no reading in it")),
    _f("boards_in_use_now", "正在使用的一体机", "Boards in use now", "count", "higher", "sum", _NOW,
       "sum(n.in_use)", extra="AND n.kind = 'board'",
       over=Over(_PERIOD_DEVICES, "count(*) FILTER (WHERE dev.kind = 'board' AND dev.used)",
                 meaning="boards with any active use in the period")),
    _f("recorders_live_now", "正在直播的录播教室", "Recording rooms live now", "count", "higher", "sum", _NOW,
       "sum(n.streaming)", extra="AND n.kind = 'recorder'",
       over=Over(_PERIOD_DEVICES, "count(*) FILTER (WHERE dev.kind = 'recorder' AND dev.streamed)",
                 meaning="recorders that streamed in the period")),
    _f("recorders_recording_now", "正在录制的录播教室", "Recording rooms recording now", "count", "higher", "sum",
       _NOW, "sum(n.recording)", extra="AND n.kind = 'recorder'",
       over=Over(_PERIOD_DEVICES, "count(*) FILTER (WHERE dev.kind = 'recorder' AND dev.recorded)",
                 meaning="recorders that recorded in the period")),
    _f("use_hours_per_board_day", "一体机日均使用时长", "Use per board per school day", "hours", "higher", "ratio",
       _SCHOOL_USE, "coalesce(sum(u.use_s), 0) / 3600.0", "sum(n.devices) * greatest(%(school_days)s, 1)",
       description="active-use hours over the last school days / (boards × school days)",
       over=Over(_PERIOD_SCHOOLS, f"coalesce(sum(r.use_s) {_kind('board')}, 0) / 3600.0",
                 f"sum(n.devices) {_kind('board')} * %(p_school_days)s",
                 "active-use hours / (boards × school days of the period)"),
       lessons=Over(_PERIOD_LESSONS, f"coalesce(sum(r.use_s) {_kind('board')}, 0) / 3600.0",
                    f"sum(n.devices) {_kind('board')} * %(p_school_days)s",
                    "active-use hours in lesson hours / (boards × school days of the period)")),
    _f("boards_used_today_share", "今日使用过的一体机占比", "Boards used today", "ratio", "higher", "ratio",
       _SCHOOL_USE, "coalesce(sum(u.active_today), 0)", "sum(n.devices)",
       over=Over(_PERIOD_DEVICES, "count(*) FILTER (WHERE dev.kind = 'board' AND dev.used)",
                 "count(*) FILTER (WHERE dev.kind = 'board')", "boards with any active use in the period / boards")),
    _f("boards_unused_share", "近期从未使用的一体机占比", "Boards never used lately", "ratio", "lower", "ratio",
       _BOARD_USE, "count(*) FILTER (WHERE coalesce(u.use_s, 0) = 0)", "count(*)",
       description="boards with no active use at all over the window of school days",
       over=Over(_PERIOD_DEVICES, "count(*) FILTER (WHERE dev.kind = 'board' AND NOT dev.used)",
                 "count(*) FILTER (WHERE dev.kind = 'board')", "boards with no active use in the period / boards")),
    _f("powered_on_rate_school_hours", "上课时段开机率", "Powered on in school hours", "ratio", "higher", "ratio",
       _SCHOOL_USE, "sum(least(coalesce(u.on_min, 0), n.devices * 600.0 * greatest(%(school_days)s, 1)))",
       "sum(n.devices) * 600.0 * greatest(%(school_days)s, 1)",
       description="powered-on minutes / (boards × 600 school minutes × school days)",
       over=Over(_PERIOD_SCHOOLS, _BOARD_SCHOOL_ON, _BOARD_SCHOOL_MINUTES,
                 "powered-on minutes, at most 600 a board and school day in each school / "
                 "(boards × 600 × school days of the period)"),
       lessons=Over(_PERIOD_LESSONS, f"coalesce(sum(r.on_min) {_kind('board')}, 0)",
                    f"sum(n.device_minutes) {_kind('board')}",
                    "powered-on minutes in lesson hours / the boards' in-service lesson minutes")),
    _f("recorded_hours_7d", "近7天录制时长", "Hours recorded (7 days)", "hours", "higher", "sum", _SCHOOL_DAILY,
       "coalesce(sum(r.recording_minutes), 0) / 60.0", extra="'recorder'", over=_hours("rec_min", "recorder", "recording"),
       lessons=_hours("rec_min", "recorder", "recording", _PERIOD_LESSONS)),
    _f("streamed_hours_7d", "近7天直播时长", "Hours streamed (7 days)", "hours", "higher", "sum", _SCHOOL_DAILY,
       "coalesce(sum(r.streaming_minutes), 0) / 60.0", extra="'recorder'", over=_hours("stream_min", "recorder", "streaming"),
       lessons=_hours("stream_min", "recorder", "streaming", _PERIOD_LESSONS)),
    _f("schools_gigabit_share", "千兆到校比例", "Schools with ≥1 Gbit/s", "ratio", "higher", "ratio", _SCHOOLS,
       "count(*) FILTER (WHERE s.uplink_mbps >= 1000)", "count(*)",
       over=Over(_SCHOOLS, "count(*) FILTER (WHERE s.uplink_mbps >= 1000)", "count(*)",
                 "the registry as it is now: no history of contracts is kept")),
    _f("schools_below_100m", "百兆以下学校", "Schools below 100 Mbit/s", "count", "lower", "sum", _SCHOOLS,
       "count(*) FILTER (WHERE s.uplink_mbps < 100)",
       over=Over(_SCHOOLS, "count(*) FILTER (WHERE s.uplink_mbps < 100)",
                 meaning="the registry as it is now: no history of contracts is kept")),
    _f("network_latency_ms", "平均网络时延", "Mean latency", "ms", "lower", "ratio", _SCHOOLS,
       "sum((gs.last_values ->> 'latency_ms')::numeric)", "count((gs.last_values ->> 'latency_ms')::numeric)",
       over=Over(_PERIOD_SCHOOLS, f"sum(r.latency_w) {_kind('gateway')}", f"sum(r.latency_n) {_kind('gateway')}",
                 "the gateways' mean latency over the period, weighted by their online minutes")),
    _f("network_poor_loss_share", "丢包率差(≥5%)学校占比", "Schools with poor loss", "ratio", "lower", "ratio",
       _SCHOOLS, "count(*) FILTER (WHERE (gs.last_values ->> 'loss_pct')::numeric >= %(poor_loss_pct)s)",
       "count((gs.last_values ->> 'loss_pct')::numeric)",
       over=Over(_PERIOD_SCHOOLS, "count(*) FILTER (WHERE n.kind = 'gateway' AND r.loss_w / nullif(r.loss_n, 0) "
                 ">= %(poor_loss_pct)s)", "count(*) FILTER (WHERE n.kind = 'gateway' AND r.loss_n > 0)",
                 "schools whose mean loss over the period ≥ METRICS_POOR_LOSS_PCT / schools reporting loss")),
    _f("peak_utilisation_today", "今日出口峰值利用率", "Peak uplink use today", "ratio", "lower", "max",
       _SCHOOL_DAILY, "max(r.utilisation_max) FILTER (WHERE r.bucket >= %(today)s)", extra="'gateway'",
       over=Over(_PERIOD_SCHOOLS, f"max(r.util_max) {_kind('gateway')}",
                 meaning="the highest hourly utilisation of any gateway in the period")),
)}


def cube_of(over: Over) -> str | None:
    """The county twin of a period formula's template, if it has one and the formula needs nothing it lacks."""
    cube = CUBES.get(over.template)
    return None if cube is None or any(c in over.num + over.den for c in _NOT_IN_CUBE) else cube


def uses_now(figures: list[Figure]) -> bool:
    """True when any of the figures reads the per-school "now" counts."""
    return any("school_now" in f.template for f in figures)


def figure(key: str) -> Figure:
    """The figure with this key; KeyError if there is none."""
    return FIGURES[key]
