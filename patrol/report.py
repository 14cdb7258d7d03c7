"""The patrol round (巡检) of a scope and its report, and the 巡课 list of classrooms in session.

A round records what was checked (devices by kind and how many were online, the rules
in force, today's remote lessons) and what was found (every open alert in the scope),
marking each finding new, ongoing or cleared against the scope's previous round.
"""

import html
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Font
from psycopg import Connection
from psycopg.types.json import Jsonb

from core.settings import school_zone
from patrol.workorders import response_times

_CHECKED = """
SELECT d.kind, count(*) AS devices, count(*) FILTER (WHERE st.online) AS online
FROM device d JOIN school s ON s.code = d.school_code LEFT JOIN device_state st ON st.device_id = d.id
WHERE school_in_scope(%(level)s, %(code)s, d.school_code)
GROUP BY d.kind ORDER BY d.kind
"""

_LESSONS = """
SELECT ls.status, count(*) AS n FROM lesson_session ls JOIN remote_lesson l ON l.id = ls.lesson_id
JOIN device d ON d.id = l.main_device_id
WHERE ls.day = %(day)s AND school_in_scope(%(level)s, %(code)s, d.school_code)
GROUP BY ls.status
"""

_FINDINGS = """
WITH prev AS (
    SELECT f.* FROM patrol_finding f
    WHERE f.change <> 'cleared' AND f.round_id = (
        SELECT id FROM patrol_round WHERE scope_level = %(level)s AND scope_code = %(code)s AND id <> %(round)s
        ORDER BY started_at DESC, id DESC LIMIT 1)
), cur AS (
    SELECT a.* FROM alert a
    WHERE a.state <> 'resolved' AND school_in_scope(%(level)s, %(code)s, a.school_code)
)
INSERT INTO patrol_finding (round_id, rule_id, device_id, school_code, severity, state, summary, first_seen,
                            change, alert_id)
SELECT %(round)s, c.rule_id, c.device_id, c.school_code, c.severity,
       CASE WHEN c.inhibited_by IS NOT NULL THEN c.state || '/inhibited' ELSE c.state END, c.summary,
       c.first_seen, CASE WHEN p.rule_id IS NULL THEN 'new' ELSE 'ongoing' END, c.id
FROM cur c LEFT JOIN prev p ON p.rule_id = c.rule_id AND p.device_id = c.device_id
UNION ALL
SELECT %(round)s, p.rule_id, p.device_id, p.school_code, p.severity, 'resolved', p.summary, p.first_seen,
       'cleared', p.alert_id
FROM prev p WHERE NOT EXISTS (SELECT 1 FROM cur c WHERE c.rule_id = p.rule_id AND c.device_id = p.device_id)
"""

_CHANGE_LABEL = {"new": "新发现", "ongoing": "持续", "cleared": "已消除"}


def run_round(conn: Connection, scope_level: str, scope_code: str, now: datetime, *, tz: str | None = None,
              trigger: str = "on_demand") -> int:
    """Patrol a scope now: record what was checked and found; return the round's id."""
    day = now.astimezone(school_zone(tz)).date()
    scope = {"level": scope_level, "code": scope_code, "day": day}
    with conn.transaction():
        checked = {
            "devices": {r["kind"]: {"devices": r["devices"], "online": r["online"]}
                        for r in conn.execute(_CHECKED, scope).fetchall()},
            "rules": [r["id"] for r in conn.execute("SELECT id FROM patrol_rule WHERE enabled ORDER BY id")],
            "lessons_today": {r["status"]: r["n"] for r in conn.execute(_LESSONS, scope).fetchall()},
        }
        round_id = conn.execute(
            """INSERT INTO patrol_round (scope_level, scope_code, day, trigger, started_at, checked)
               VALUES (%s, %s, %s, %s, %s, %s) RETURNING id""",
            (scope_level, scope_code, day, trigger, now, Jsonb(checked))).fetchone()["id"]
        conn.execute(_FINDINGS, {**scope, "round": round_id})
        conn.execute("UPDATE patrol_round SET summary = %s WHERE id = %s",
                     (Jsonb(_summary(conn, round_id, scope_level, scope_code, now)), round_id))
    return round_id


def _summary(conn: Connection, round_id: int, level: str, code: str, now: datetime) -> dict:
    counts = conn.execute(
        """SELECT count(*) FILTER (WHERE change <> 'cleared') AS open,
                  count(*) FILTER (WHERE change = 'new') AS new,
                  count(*) FILTER (WHERE change = 'cleared') AS cleared,
                  count(*) FILTER (WHERE change <> 'cleared' AND severity = 'critical') AS critical,
                  count(*) FILTER (WHERE change <> 'cleared' AND severity = 'major') AS major,
                  count(*) FILTER (WHERE change <> 'cleared' AND severity = 'warning') AS warning,
                  count(*) FILTER (WHERE change <> 'cleared' AND severity = 'info') AS info
           FROM patrol_finding WHERE round_id = %s""", (round_id,)).fetchone()
    times = response_times(conn, level, code, now - timedelta(days=1), now)
    t = times[0] if times else {}
    return {**counts, "fired_24h": t.get("fired", 0),
            "mtta_s_24h": _round(t.get("mtta_s")), "mttr_s_24h": _round(t.get("mttr_s"))}


def _round(value) -> float | None:
    return None if value is None else round(float(value), 1)


def daily_rounds(conn: Connection, now: datetime, *, tz: str | None = None) -> list[int]:
    """The daily round of every scope an ops team owns, unless it already ran today."""
    day = now.astimezone(school_zone(tz)).date()
    scopes = conn.execute(
        """SELECT DISTINCT t.scope_level, t.scope_code FROM ops_team t
           WHERE NOT EXISTS (SELECT 1 FROM patrol_round r WHERE r.scope_level = t.scope_level
                             AND r.scope_code = t.scope_code AND r.day = %s AND r.trigger = 'daily')""",
        (day,)).fetchall()
    return [run_round(conn, s["scope_level"], s["scope_code"], now, tz=tz, trigger="daily") for s in scopes]


def load_round(conn: Connection, round_id: int) -> dict | None:
    """A round with its findings, worst first."""
    row = conn.execute("SELECT * FROM patrol_round WHERE id = %s", (round_id,)).fetchone()
    if row is None:
        return None
    row["findings"] = conn.execute(
        """SELECT f.*, s.name AS school_name FROM patrol_finding f JOIN school s ON s.code = f.school_code
           WHERE f.round_id = %s
           ORDER BY f.change = 'cleared', CASE f.severity WHEN 'critical' THEN 0 WHEN 'major' THEN 1
                    WHEN 'warning' THEN 2 ELSE 3 END, f.school_code, f.device_id""", (round_id,)).fetchall()
    return row


def list_rounds(conn: Connection, scope_level: str, scope_code: str, limit: int = 30) -> list[dict]:
    """The scope's latest rounds, newest first, without findings."""
    return conn.execute("SELECT * FROM patrol_round WHERE scope_level = %s AND scope_code = %s "
                        "ORDER BY started_at DESC LIMIT %s", (scope_level, scope_code, limit)).fetchall()


_FINDING_COLUMNS = ("变化", "严重程度", "学校", "设备", "规则", "状态", "说明", "开始时间")


def _finding_row(f: dict, tz: ZoneInfo) -> tuple:
    return (_CHANGE_LABEL[f["change"]], f["severity"], f["school_name"], f["device_id"], f["rule_id"],
            f["state"], f["summary"], f["first_seen"].astimezone(tz).strftime("%Y-%m-%d %H:%M"))


def render_html(report: dict, tz: str | None = None) -> str:
    """A round (from load_round) as a self-contained HTML page."""
    zone = school_zone(tz)
    e = html.escape
    s, checked = report["summary"], report["checked"]
    devices = "".join(f"<tr><td>{e(k)}</td><td>{v['devices']}</td><td>{v['online']}</td></tr>"
                      for k, v in checked.get("devices", {}).items())
    lessons = "，".join(f"{e(k)} {v}" for k, v in checked.get("lessons_today", {}).items()) or "无"
    rows = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in _finding_row(f, zone)) + "</tr>"
                   for f in report["findings"])
    head = "".join(f"<th>{c}</th>" for c in _FINDING_COLUMNS)
    title = f"巡检报告 {e(report['scope_level'])} {e(report['scope_code'])} {report['day']}"
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px}}</style></head><body>
<h1>{title}</h1>
<p>巡检时间 {report['started_at'].astimezone(zone):%Y-%m-%d %H:%M}（{e(report['trigger'])}）</p>
<h2>检查了什么</h2>
<table><tr><th>设备类型</th><th>设备数</th><th>在线</th></tr>{devices}</table>
<p>规则 {len(checked.get('rules', []))} 条；今日专递课堂：{lessons}</p>
<h2>发现了什么</h2>
<p>未消除 {s.get('open', 0)}（严重 {s.get('critical', 0)}，重要 {s.get('major', 0)}，一般 {s.get('warning', 0)}，
提示 {s.get('info', 0)}）；较上次新发现 {s.get('new', 0)}，已消除 {s.get('cleared', 0)}。
近24小时告警 {s.get('fired_24h', 0)}，平均确认 {s.get('mtta_s_24h')} 秒，平均恢复 {s.get('mttr_s_24h')} 秒。</p>
<table><tr>{head}</tr>{rows}</table></body></html>"""


def render_xlsx(report: dict, tz: str | None = None) -> bytes:
    """A round (from load_round) as an Excel workbook: a summary sheet and a findings sheet."""
    zone = school_zone(tz)
    book = Workbook()
    summary = book.active
    summary.title = "概况"
    summary.append(["范围", f"{report['scope_level']} {report['scope_code']}"])
    summary.append(["日期", str(report["day"])])
    summary.append(["巡检时间", report["started_at"].astimezone(zone).strftime("%Y-%m-%d %H:%M")])
    for kind, v in report["checked"].get("devices", {}).items():
        summary.append([f"{kind} 设备/在线", v["devices"], v["online"]])
    for key, value in report["summary"].items():
        summary.append([key, value])
    findings = book.create_sheet("发现")
    findings.append(list(_FINDING_COLUMNS))
    for cell in findings[1]:
        cell.font = Font(bold=True)
    for f in report["findings"]:
        findings.append(list(_finding_row(f, zone)))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


_IN_SESSION = """
SELECT 'main' AS role, d.id AS device_id, d.school_code, s.name AS school_name, d.room,
       st.last_values ->> 'lesson_id' AS lesson_id, l.subject, st.last_values -> 'cameras' AS cameras,
       st.last_seen
FROM device_state st JOIN device d ON d.id = st.device_id JOIN school s ON s.code = d.school_code
LEFT JOIN remote_lesson l ON l.id = st.last_values ->> 'lesson_id'
WHERE d.kind = 'recorder' AND st.online AND st.streaming
  AND school_in_scope(%(level)s, %(code)s, d.school_code)
UNION ALL
SELECT 'receiving', d.id, d.school_code, s.name, d.room, l.id, l.subject, NULL::jsonb, st.last_seen
FROM remote_lesson l JOIN remote_lesson_receiver rr ON rr.lesson_id = l.id
JOIN device d ON d.id = rr.device_id JOIN school s ON s.code = d.school_code
JOIN device_state st ON st.device_id = d.id
WHERE st.online AND l.weekday = extract(isodow FROM %(today)s::date)
  AND %(today)s::date BETWEEN l.valid_from AND l.valid_until
  AND %(local_time)s::time >= l.starts_at AND %(local_time)s::time < l.ends_at
  AND school_in_scope(%(level)s, %(code)s, d.school_code)
ORDER BY school_code, role, room
"""


def classrooms_in_session(conn: Connection, scope_level: str, scope_code: str, now: datetime,
                          tz: str | None = None) -> list[dict]:
    """The 巡课 list: recorders streaming now and receiving boards in a running lesson, with snapshot stats."""
    local = now.astimezone(school_zone(tz))
    return conn.execute(_IN_SESSION, {"level": scope_level, "code": scope_code, "today": local.date(),
                                      "local_time": local.time().replace(tzinfo=None)}).fetchall()
