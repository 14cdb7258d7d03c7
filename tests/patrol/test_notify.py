"""Notices against a local chat-robot webhook, a local SMTP server and the real broker."""

import email
import email.policy
import json
import re
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller

from core.mqtt import LinkOptions, MqttLink
from core.settings import parse_mqtt_url
from patrol.notify import Notice, Notifier, dispatch, field_link
from patrol.routing import create_team
from patrol.settings import PatrolSettings
from tests.patrol.conftest import LESSON_TIME

NOW = LESSON_TIME


class Robot:
    """A local chat-robot webhook that records what it is sent and answers with `status`."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.status = 200
        robot = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                robot.received.append({"path": self.path, "json": json.loads(body)})
                reply = json.dumps({"errcode": 0, "errmsg": "ok"}).encode()
                self.send_response(robot.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"


@pytest.fixture
def robot():
    r = Robot()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


class Mailbox:
    """aiosmtpd handler keeping every message."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp():
    box = Mailbox()
    with socket.socket() as probe:  # a free port: aiosmtpd checks readiness by connecting to it
        probe.bind(("127.0.0.1", 0))
        box.port = probe.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


def _settings(**kw) -> PatrolSettings:
    return PatrolSettings(**{"reminder_s": 1800, "escalate_after_s": 3600, **kw})


def _two_dead_boards(world) -> tuple[str, list[str]]:
    school = world.school()
    boards = [world.registry.device(school, "board") for _ in range(2)]
    for b in boards:
        world.offline(b, NOW - timedelta(hours=1))
    return school, boards


def test_firing_goes_to_webhook_and_email_grouped_per_school(world, robot, smtp):
    school, boards = _two_dead_boards(world)
    create_team(world.db, "曾都区运维", "county", "421303", webhook_url=robot.url("/county"),
                email="ops@example.edu")
    create_team(world.db, "随州市运维", "city", "421300", webhook_url=robot.url("/city"))
    world.cycle(NOW)
    notifier = Notifier(_settings(smtp_host="127.0.0.1", smtp_port=smtp.port))
    assert dispatch(world.db, notifier, NOW)["firing"] == 2
    assert len(robot.received) == 1 and robot.received[0]["path"] == "/county"  # the smallest scope
    message = robot.received[0]["json"]
    assert message["msgtype"] == "markdown" and "设备离线" in message["markdown"]["content"]
    assert len(smtp.messages) == 1 and smtp.messages[0].rcpt_tos == ["ops@example.edu"]
    assert "设备离线" in smtp.messages[0].content.decode("utf-8", "replace") or smtp.messages[0].content
    alerts = [a["id"] for a in world.alerts("device_offline")]
    links = {f"http://127.0.0.1:8050/field?alert={a}" for a in alerts}  # each alert, on the phone page
    assert links <= set(re.findall(r"\]\((\S+?)\)", message["markdown"]["content"]))
    mail = email.message_from_bytes(smtp.messages[0].content, policy=email.policy.default).get_content()
    assert links <= set(re.findall(r"\]\((\S+?)\)", mail))
    assert dispatch(world.db, notifier, NOW + timedelta(seconds=15)) == \
        {"firing": 0, "escalation": 0, "reminder": 0, "resolved": 0}
    logged = world.db.execute("SELECT channel, status FROM notification ORDER BY id").fetchall()
    assert logged == [{"channel": "webhook", "status": "sent"}, {"channel": "email", "status": "sent"}]


def test_reminder_then_escalation_to_the_parent_scope(world, robot):
    _, boards = _two_dead_boards(world)
    county = create_team(world.db, "曾都区运维", "county", "421303", webhook_url=robot.url("/county"))
    city = create_team(world.db, "随州市运维", "city", "421300", webhook_url=robot.url("/city"))
    world.cycle(NOW)
    notifier = Notifier(_settings())
    dispatch(world.db, notifier, NOW)
    assert dispatch(world.db, notifier, NOW + timedelta(minutes=29))["reminder"] == 0
    assert dispatch(world.db, notifier, NOW + timedelta(minutes=31))["reminder"] == 2
    assert "仍未确认" in robot.received[-1]["json"]["markdown"]["content"]
    done = dispatch(world.db, notifier, NOW + timedelta(minutes=61))
    assert done["escalation"] == 2 and done["reminder"] == 0
    assert robot.received[-1]["path"] == "/city"
    alerts = world.alerts("device_offline")
    assert {a["team_id"] for a in alerts} == {city} and {a["escalation_level"] for a in alerts} == {1}
    assert county != city
    # no team above the city: the next deadline escalates nothing
    assert dispatch(world.db, notifier, NOW + timedelta(minutes=125))["escalation"] == 0


def test_resolved_notice_after_auto_resolve(world, robot):
    _, boards = _two_dead_boards(world)
    create_team(world.db, "曾都区运维", "county", "421303", webhook_url=robot.url("/county"))
    world.cycle(NOW)
    notifier = Notifier(_settings())
    dispatch(world.db, notifier, NOW)
    world.state(boards[0])
    world.cycle(NOW + timedelta(minutes=1))
    assert dispatch(world.db, notifier, NOW + timedelta(minutes=1))["resolved"] == 1
    assert "恢复" in robot.received[-1]["json"]["markdown"]["content"]


def test_a_failed_webhook_is_logged_and_retried(world, robot):
    _two_dead_boards(world)
    create_team(world.db, "曾都区运维", "county", "421303", webhook_url=robot.url("/county"))
    world.cycle(NOW)
    notifier = Notifier(_settings())
    robot.status = 500
    assert dispatch(world.db, notifier, NOW)["firing"] == 0
    failed = world.db.execute("SELECT status, error FROM notification").fetchone()
    assert failed["status"] == "failed" and "500" in failed["error"]
    robot.status = 200
    assert dispatch(world.db, notifier, NOW + timedelta(seconds=15))["firing"] == 2


def test_inhibited_and_finding_alerts_are_never_sent(world, robot):
    school = world.school()
    gateway = world.registry.device(school, "gateway")
    boards = [world.registry.device(school, "board") for _ in range(5)]
    for d in [gateway, *boards]:
        world.offline(d, NOW - timedelta(hours=1))
    create_team(world.db, "校内运维", "school", school, webhook_url=robot.url("/school"))
    world.cycle(NOW)
    assert dispatch(world.db, Notifier(_settings()), NOW)["firing"] == 1
    assert "学校网络中断" in robot.received[0]["json"]["markdown"]["content"]


def test_mqtt_channel(world, broker):
    _two_dead_boards(world)
    world.cycle(NOW)
    got: list = []
    arrived = threading.Event()

    def on_message(message) -> None:
        got.append(json.loads(message.payload))
        arrived.set()

    address = parse_mqtt_url(broker.url)
    listener = MqttLink(address, LinkOptions("patrol-test-listener", subscriptions=[("edu/ops/alerts", 1)]),
                        on_message=on_message)
    sender = MqttLink(address, LinkOptions("patrol-test-sender"))
    listener.start()
    sender.start()
    try:
        assert dispatch(world.db, Notifier(_settings(), link=sender), NOW)["firing"] == 2
        assert arrived.wait(5)
    finally:
        sender.stop()
        listener.stop()
    assert got[0]["kind"] == "firing" and len(got[0]["alerts"]) == 2
    assert {a["link"] for a in got[0]["alerts"]} == {f"http://127.0.0.1:8050/field?alert={a['id']}"
                                                     for a in got[0]["alerts"]}
    assert listener.callback_errors == 0


def test_each_notice_links_to_its_alerts_on_the_phone_page():
    at = LESSON_TIME
    alerts = [{"id": i, "severity": severity, "summary": summary, "device_id": f"B{i}", "fired_at": at + timedelta(
        minutes=i), "first_seen": at, "resolved_at": at + timedelta(hours=1), "rule_id": "device_offline", "school_code": "4213030001",
        "state": "firing", "escalation_level": 0}
        for i, severity, summary in ((7, "warning", "一体机离线"), (9, "critical", "学校网络中断"),
                                     (8, "warning", "录播离线"))]
    notice = Notice("firing", {"name": "曾都区运维"}, "曾都一小", alerts)
    body = notice.markdown(ZoneInfo("Asia/Shanghai"), "https://cockpit.example.edu/")
    lines = body.split("\n")
    assert lines[1].startswith("> [critical] 学校网络中断") and lines[2].startswith("> [warning] 录播离线")  # worst, newest
    assert [re.findall(r"\((\S+)\)$", line) for line in lines[1:4]] == [
        [f"https://cockpit.example.edu/field?alert={i}"] for i in (9, 8, 7)]  # one link a line, no double slash
    assert lines[-1] == "[查看详情](https://cockpit.example.edu/field?alert=9)"  # the worst
    assert [a["link"] for a in notice.payload("https://cockpit.example.edu")["alerts"]] == [
        f"https://cockpit.example.edu/field?alert={i}" for i in (9, 8, 7)]
    alone = Notice("resolved", None, "曾都一小", alerts[:1]).markdown(ZoneInfo("Asia/Shanghai"), "http://x")
    assert alone.count("/field?alert=7") == 1  # one alert: the one link at the end
    assert field_link("http://127.0.0.1:8050", 12) == "http://127.0.0.1:8050/field?alert=12"
