"""Notices to the ops teams: MQTT, a chat-robot webhook, e-mail; every send logged in `notification`.

Alerts are grouped per (team, school) so a school's troubles arrive as one message.
What is sent: new firing alerts, resolved notices for alerts that were notified,
reminders for alerts still unacknowledged after `reminder_s`, and escalations to
the next team up after `escalate_after_s`. Inhibited and silenced alerts and rules
that are findings rather than pages are never sent. A group whose every channel
failed is tried again on the next cycle.
"""

import json
import logging
import smtplib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import httpx
from psycopg import Connection

from core.mqtt import MqttLink, Outgoing
from core.settings import school_zone
from patrol.routing import escalate_overdue
from patrol.settings import PatrolSettings

log = logging.getLogger(__name__)

KIND_TITLES = {"firing": "告警", "resolved": "恢复", "reminder": "提醒：仍未确认", "escalation": "升级"}
_SEVERITY_RANK = {"info": 0, "warning": 1, "major": 2, "critical": 3}

_ALERT_COLUMNS = """
SELECT a.id, a.rule_id, a.device_id, a.school_code, a.state, a.severity, a.summary, a.first_seen, a.fired_at,
       a.resolved_at, a.escalation_level, a.count, a.team_id, s.name AS school_name
FROM alert a JOIN school s ON s.code = a.school_code JOIN patrol_rule r ON r.id = a.rule_id
"""
_PAGEABLE = "a.inhibited_by IS NULL AND a.silence_id IS NULL AND r.page"

_CANDIDATES = {
    "firing": _ALERT_COLUMNS + "WHERE a.state = 'firing' AND a.notified_at IS NULL AND " + _PAGEABLE,
    "resolved": _ALERT_COLUMNS + """WHERE a.state = 'resolved' AND a.notified_at IS NOT NULL
                                    AND a.resolved_notified_at IS NULL""",
    "reminder": _ALERT_COLUMNS + """WHERE a.state = 'firing' AND a.notified_at IS NOT NULL AND """ + _PAGEABLE + """
        AND coalesce(a.reminded_at, a.escalated_at, a.notified_at) <= %(now)s - make_interval(secs => %(every)s)""",
    "escalation": _ALERT_COLUMNS + "WHERE a.id = ANY(%(ids)s)",
}
_MARK = {
    "firing": "UPDATE alert SET notified_at = %(now)s WHERE id = ANY(%(ids)s)",
    "resolved": "UPDATE alert SET resolved_notified_at = %(now)s WHERE id = ANY(%(ids)s)",
    "reminder": "UPDATE alert SET reminded_at = %(now)s WHERE id = ANY(%(ids)s)",
    "escalation": "UPDATE alert SET reminded_at = %(now)s WHERE id = ANY(%(ids)s)",
}


@dataclass
class Notice:
    """One message: some alerts of one school, for one team."""

    kind: str
    team: dict | None
    school_name: str
    alerts: list[dict]

    def title(self) -> str:
        """A one-line subject."""
        return f"【{KIND_TITLES[self.kind]}】{self.school_name} · {len(self.alerts)} 条"

    def worst_first(self) -> list[dict]:
        """The notice's alerts, worst first (newest first within a severity)."""
        by_time = sorted(self.alerts, key=lambda a: a["fired_at"] or a["first_seen"], reverse=True)
        return sorted(by_time, key=lambda a: -_SEVERITY_RANK[a["severity"]])

    def markdown(self, tz: ZoneInfo, link: str) -> str:
        """The message body in chat-robot markdown: each alert links to the cockpit's phone page, where the
        team acknowledges, takes and closes it (after a login, the link lands there)."""
        alerts = self.worst_first()
        lines = [f"**{self.title()}**"]
        for a in alerts:
            since = (a["fired_at"] or a["first_seen"]).astimezone(tz).strftime("%m-%d %H:%M")
            tail = f"，已恢复 {a['resolved_at'].astimezone(tz):%H:%M}" if self.kind == "resolved" else ""
            own = f" [处理]({field_link(link, a['id'])})" if len(alerts) > 1 else ""
            lines.append(f"> [{a['severity']}] {a['summary']}（{a['device_id']}）自 {since}{tail}{own}")
        if self.kind == "escalation":
            lines.append(f"已升级至第 {self.alerts[0]['escalation_level']} 级，请尽快确认。")
        lines.append(f"[查看详情]({field_link(link, alerts[0]['id'])})")
        return "\n".join(lines)

    def payload(self, link: str) -> dict:
        """The structured form sent over MQTT, each alert with its link to the phone page."""
        return {"kind": self.kind, "team": self.team["name"] if self.team else None,
                "school": self.school_name,
                "alerts": [{"id": a["id"], "rule": a["rule_id"], "device_id": a["device_id"],
                            "school_code": a["school_code"], "severity": a["severity"], "summary": a["summary"],
                            "state": a["state"], "link": field_link(link, a["id"])} for a in self.worst_first()]}


def field_link(dashboard_url: str, alert_id: int) -> str:
    """The cockpit's phone page (外勤) opened on an alert: `{dashboard_url}/field?alert={id}`."""
    return f"{dashboard_url.rstrip('/')}/field?alert={int(alert_id)}"


class Notifier:
    """Sends notices on every channel a team has, and logs each attempt."""

    def __init__(self, settings: PatrolSettings, *, link: MqttLink | None = None, tz: str | None = None,
                 http: httpx.Client | None = None) -> None:
        self.settings = settings
        self.link = link
        self.tz = school_zone(tz)
        self.http = http or httpx.Client(timeout=settings.webhook_timeout_s)
        self.sent = 0
        self.failed = 0

    def channels(self, team: dict | None) -> list[tuple[str, str]]:
        """(channel, target) pairs for a team; the default topic when it has none of its own."""
        out = []
        topic = (team or {}).get("mqtt_topic") or self.settings.default_mqtt_topic
        if self.link is not None:
            out.append(("mqtt", topic))
        if team and team.get("webhook_url"):
            out.append(("webhook", team["webhook_url"]))
        if team and team.get("email") and self.settings.smtp_host:
            out.append(("email", team["email"]))
        return out

    def send(self, conn: Connection, notice: Notice) -> bool:
        """Send one notice everywhere it should go; True when at least one channel took it."""
        body = notice.markdown(self.tz, self.settings.dashboard_url)
        channels = self.channels(notice.team)
        delivered = not channels
        for channel, target in channels:
            error = None
            try:
                getattr(self, f"_send_{channel}")(target, notice, body)
            except Exception as exc:  # every channel failure is logged and recorded, never raised
                error = f"{type(exc).__name__}: {exc}"[:500]
                log.warning("patrol %s notice to %s failed: %s", channel, target, error)
            delivered = delivered or error is None
            self.sent += error is None
            self.failed += error is not None
            conn.execute(
                """INSERT INTO notification (kind, channel, team_id, target, alert_ids, status, error, body)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
                (notice.kind, channel, notice.team["id"] if notice.team else None, target,
                 [a["id"] for a in notice.alerts], "failed" if error else "sent", error, body))
        return delivered

    def _send_mqtt(self, topic: str, notice: Notice, _body: str) -> None:
        payload = json.dumps(notice.payload(self.settings.dashboard_url), ensure_ascii=False).encode()
        self.link.publish(Outgoing(topic, payload, qos=1), wait_s=5)

    def _send_webhook(self, url: str, notice: Notice, body: str) -> None:
        response = self.http.post(url, json={"msgtype": "markdown", "markdown": {"content": body}})
        response.raise_for_status()
        if response.headers.get("content-type", "").startswith("application/json"):
            errcode = response.json().get("errcode", 0)
            if errcode:
                raise RuntimeError(f"robot answered errcode {errcode}: {response.json().get('errmsg')}")

    def _send_email(self, to: str, notice: Notice, body: str) -> None:
        s = self.settings
        message = EmailMessage()
        message["Subject"] = notice.title()
        message["From"] = s.smtp_from
        message["To"] = to
        message.set_content(body)
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_s) as smtp:
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_username:
                smtp.login(s.smtp_username, s.smtp_password)
            smtp.send_message(message)


def _group(conn: Connection, kind: str, alerts: list[dict]) -> list[Notice]:
    teams = {t["id"]: t for t in conn.execute("SELECT * FROM ops_team").fetchall()}
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for a in alerts:
        groups[(a["team_id"], a["school_code"])].append(a)
    return [Notice(kind, teams.get(team_id), items[0]["school_name"], items)
            for (team_id, _school), items in groups.items()]


def dispatch(conn: Connection, notifier: Notifier, now: datetime) -> dict[str, int]:
    """Escalate what is overdue, then send every notice due at `now`; return alerts notified per kind."""
    s = notifier.settings
    escalated = escalate_overdue(conn, now, s.escalate_after_s, s.max_escalation)
    done: dict[str, int] = {}
    for kind in ("firing", "escalation", "reminder", "resolved"):
        alerts = conn.execute(_CANDIDATES[kind], {"now": now, "every": s.reminder_s, "ids": escalated}).fetchall()
        count = 0
        for notice in _group(conn, kind, alerts):
            if notifier.send(conn, notice):
                conn.execute(_MARK[kind], {"now": now, "ids": [a["id"] for a in notice.alerts]})
                count += len(notice.alerts)
        done[kind] = count
    return done
