"""The catalogue of figures: each one's formula lives here and only here.

A figure's SQL gives one row per child scope with a numerator and a denominator. The scope's
own value combines the children's rows with the figure's aggregation (a ratio of
sums, a sum, or a maximum), so a province figure is exactly the combination of its
cities'. Figures that share a template and filter are computed in one query. `{child}`,
`{columns}` and `{where}` are filled with the child key, the figures' numerators and
denominators, and the scope/user bound (api/scopes/access.py); every value is a bound
parameter.
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

_SCHOOL_DAILY = """
SELECT {child} AS child, {columns}
FROM school s JOIN school_daily r ON r.school_code = s.code AND r.kind = {extra}
WHERE {where} AND r.bucket >= %(since_week)s GROUP BY 1
"""


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


def _f(key, zh, en, unit, better, aggregation, template, num, den="NULL::numeric", extra="", description=""):
    return Figure(key, zh, en, unit, better, aggregation, template, num, den, extra, description)


FIGURES: dict[str, Figure] = {f.key: f for f in (
    _f("devices", "设备总数", "Devices", "count", "higher", "sum", _NOW, "sum(n.devices)",
       description="registered devices of every kind"),
    _f("online", "在线设备", "Online devices", "count", "higher", "sum", _NOW, "sum(n.online)"),
    _f("online_rate", "在线率", "Online rate", "ratio", "higher", "ratio", _NOW, "sum(n.online)", "sum(n.devices)",
       description="online devices / registered devices, now"),
    _f("board_online_rate", "一体机在线率", "Board online rate", "ratio", "higher", "ratio", _NOW,
       "sum(n.online)", "sum(n.devices)", "AND n.kind = 'board'"),
    _f("recorder_online_rate", "录播在线率", "Recorder online rate", "ratio", "higher", "ratio", _NOW,
       "sum(n.online)", "sum(n.devices)", "AND n.kind = 'recorder'"),
    _f("gateway_online_rate", "网关在线率", "Gateway online rate", "ratio", "higher", "ratio", _NOW,
       "sum(n.online)", "sum(n.devices)", "AND n.kind = 'gateway'"),
    _f("silent_devices", "超一天无数据设备", "Silent over a day", "count", "lower", "sum", _DEVICES,
       "count(*) FILTER (WHERE coalesce(st.last_seen, d.registered_at) < now() - make_interval(hours => %(silent_hours)s))",
       description="devices with no message for more than METRICS_SILENT_HOURS (24) hours"),
    _f("boards_in_use_now", "正在使用的一体机", "Boards in use now", "count", "higher", "sum", _NOW,
       "sum(n.in_use)", extra="AND n.kind = 'board'"),
    _f("recorders_live_now", "正在直播的录播教室", "Recording rooms live now", "count", "higher", "sum", _NOW,
       "sum(n.streaming)", extra="AND n.kind = 'recorder'"),
    _f("recorders_recording_now", "正在录制的录播教室", "Recording rooms recording now", "count", "higher", "sum",
       _NOW, "sum(n.recording)", extra="AND n.kind = 'recorder'"),
    _f("use_hours_per_board_day", "一体机日均使用时长", "Use per board per school day", "hours", "higher", "ratio",
       _SCHOOL_USE, "coalesce(sum(u.use_s), 0) / 3600.0", "sum(n.devices) * greatest(%(school_days)s, 1)",
       description="active-use hours over the last school days / (boards × school days)"),
    _f("boards_used_today_share", "今日使用过的一体机占比", "Boards used today", "ratio", "higher", "ratio",
       _SCHOOL_USE, "coalesce(sum(u.active_today), 0)", "sum(n.devices)"),
    _f("boards_unused_share", "近期从未使用的一体机占比", "Boards never used lately", "ratio", "lower", "ratio",
       _BOARD_USE, "count(*) FILTER (WHERE coalesce(u.use_s, 0) = 0)", "count(*)",
       description="boards with no active use at all over the window of school days"),
    _f("powered_on_rate_school_hours", "上课时段开机率", "Powered on in school hours", "ratio", "higher", "ratio",
       _SCHOOL_USE, "least(coalesce(sum(u.on_min), 0), sum(n.devices) * 600.0 * greatest(%(school_days)s, 1))",
       "sum(n.devices) * 600.0 * greatest(%(school_days)s, 1)",
       description="powered-on minutes / (boards × 600 school minutes × school days)"),
    _f("recorded_hours_7d", "近7天录制时长", "Hours recorded (7 days)", "hours", "higher", "sum", _SCHOOL_DAILY,
       "coalesce(sum(r.recording_minutes), 0) / 60.0", extra="'recorder'"),
    _f("streamed_hours_7d", "近7天直播时长", "Hours streamed (7 days)", "hours", "higher", "sum", _SCHOOL_DAILY,
       "coalesce(sum(r.streaming_minutes), 0) / 60.0", extra="'recorder'"),
    _f("schools_gigabit_share", "千兆到校比例", "Schools with ≥1 Gbit/s", "ratio", "higher", "ratio", _SCHOOLS,
       "count(*) FILTER (WHERE s.uplink_mbps >= 1000)", "count(*)"),
    _f("schools_below_100m", "百兆以下学校", "Schools below 100 Mbit/s", "count", "lower", "sum", _SCHOOLS,
       "count(*) FILTER (WHERE s.uplink_mbps < 100)"),
    _f("network_latency_ms", "平均网络时延", "Mean latency", "ms", "lower", "ratio", _SCHOOLS,
       "sum((gs.last_values ->> 'latency_ms')::numeric)", "count((gs.last_values ->> 'latency_ms')::numeric)"),
    _f("network_poor_loss_share", "丢包率差(≥5%)学校占比", "Schools with poor loss", "ratio", "lower", "ratio",
       _SCHOOLS, "count(*) FILTER (WHERE (gs.last_values ->> 'loss_pct')::numeric >= %(poor_loss_pct)s)",
       "count((gs.last_values ->> 'loss_pct')::numeric)"),
    _f("peak_utilisation_today", "今日出口峰值利用率", "Peak uplink use today", "ratio", "lower", "max",
       _SCHOOL_DAILY, "max(r.utilisation_max) FILTER (WHERE r.bucket >= %(today)s)", extra="'gateway'"),
)}


def uses_now(figures: list[Figure]) -> bool:
    """True when any of the figures reads the per-school "now" counts."""
    return any("school_now" in f.template for f in figures)


def figure(key: str) -> Figure:
    """The figure with this key; KeyError if there is none."""
    return FIGURES[key]
