"""Device lists, detail and commands through the API, bounded by the user's scope."""

import csv
import io
from datetime import UTC, datetime, timedelta

from openpyxl import load_workbook

from core import contract
from core.contract import Channel, Command, CommandAck, CommandResult
from core.mqtt import LinkOptions, MqttLink, Outgoing
from core.settings import platform_settings
from tests.fixtures.app import login
from tests.fixtures.devices import board_reading, wait_for


def _two_counties(registry):
    registry.area()
    registry.area(county="421321", names=("湖北省", "随州市", "随县"))
    registry.area(city="420100", county="420102", names=("湖北省", "武汉市", "江岸区"))
    mine = registry.school(county="421303")
    theirs = registry.school(county="420102", city="420100")
    return mine, theirs


def test_lists_filter_page_and_export(db, registry, api):
    mine, theirs = _two_counties(registry)
    boards = [registry.device(mine) for _ in range(5)]
    registry.device(mine, "gateway")
    registry.device(theirs)
    registry.user("suizhou", "city", "421300")
    headers = login(api, "suizhou")

    page = api.get("/api/v1/scopes/city/421300/devices", params={"kind": "board", "page_size": 2, "page": 2},
                   headers=headers).json()
    assert page["total"] == 5 and [d["id"] for d in page["items"]] == sorted(boards)[2:4]
    csv_body = api.get("/api/v1/scopes/city/421300/devices?format=csv", headers=headers)
    rows = list(csv.DictReader(io.StringIO(csv_body.content.decode("utf-8-sig"))))
    assert len(rows) == 6 and csv_body.headers["content-type"].startswith("text/csv")
    xlsx = api.get("/api/v1/scopes/city/421300/devices?format=xlsx&kind=gateway", headers=headers)
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert [c.value for c in sheet[1]][:2] == ["id", "kind"] and sheet.max_row == 2


def test_devices_outside_the_scope_are_not_found(db, registry, api):
    mine, theirs = _two_counties(registry)
    foreign = registry.device(theirs)
    registry.user("suizhou", "city", "421300")
    headers = login(api, "suizhou")
    assert api.get(f"/api/v1/devices/{foreign}", headers=headers).status_code == 404
    assert api.get("/api/v1/devices/NOPE-000", headers=headers).status_code == 404
    assert api.get("/api/v1/scopes/city/420100/devices", headers=headers).status_code == 404
    assert api.post(f"/api/v1/devices/{foreign}/commands", json={"name": "reboot"}, headers=headers).status_code == 404


def test_bad_requests_get_a_reason(db, registry, api):
    registry.area()
    registry.user("suizhou", "city", "421300")
    headers = login(api, "suizhou")
    r = api.get("/api/v1/scopes/city/421300/devices?page_size=100000", headers=headers)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"][-1] == "page_size"
    assert api.get("/api/v1/scopes/planet/earth/devices", headers=headers).status_code == 422
    assert api.get("/api/v1/scopes/city/421300/devices").status_code == 401


def test_viewers_may_not_send_commands(db, registry, api):
    board = registry.device(_two_counties(registry)[0])
    registry.user("looker", "city", "421300", role="viewer")
    r = api.post(f"/api/v1/devices/{board}/commands", json={"name": "reboot"}, headers=login(api, "looker"))
    assert r.status_code == 403


def _answering_device(device_id: str) -> MqttLink:
    """A device that acknowledges every command it receives."""
    def on_command(message):
        cmd = Command.model_validate_json(message.payload)
        ack = CommandAck(v=1, id=cmd.id, ts=datetime.now(UTC), result=CommandResult.OK, message="done")
        link.publish(Outgoing(contract.topic(device_id, Channel.ACK), contract.encode(ack)))

    link = MqttLink(platform_settings().require_broker(), LinkOptions(
        client_id=device_id, subscriptions=[(contract.topic(device_id, Channel.COMMAND), 1)]), on_message=on_command)
    return link


def test_a_command_reaches_the_device_and_its_ack_is_recorded(db, registry, api, start_ingest):
    school = _two_counties(registry)[0]
    board = registry.device(school)
    registry.user("ops", "county", "421303", role="operations")
    start_ingest()
    device = _answering_device(board)
    device.start()
    try:
        headers = login(api, "ops")
        sent = api.post(f"/api/v1/devices/{board}/commands", json={"name": "notice", "params": {"text": "维护"}},
                        headers=headers)
        assert sent.status_code == 202, sent.text
        command_id = sent.json()["id"]
        done = wait_for(lambda: (c := api.get(f"/api/v1/commands/{command_id}", headers=headers).json())
                        ["status"] == "ok" and c)
        assert done["result_message"] == "done" and done["issued_by"] == "ops"
        audit = db.execute("SELECT username, action FROM audit_log WHERE action <> 'login'").fetchall()
        assert audit == [{"username": "ops", "action": "command"}]
        assert device.callback_errors == 0
    finally:
        device.stop()


def test_a_forged_ack_is_dead_lettered(db, registry, api, start_ingest, device):
    board = registry.device(_two_counties(registry)[0])
    start_ingest()
    d = device(board)
    ack = CommandAck(v=1, id="f" * 32, ts=datetime.now(UTC), result=CommandResult.OK)
    d.send(Channel.ACK, ack)
    d.send(Channel.TELEMETRY, board_reading())
    wait_for(lambda: db.execute("SELECT reason FROM dead_letter").fetchone())
    assert db.execute("SELECT reason FROM dead_letter").fetchone()["reason"].startswith("acknowledges no command")


def test_scope_commands_reach_every_device_of_a_kind(db, registry, api):
    school = _two_counties(registry)[0]
    boards = [registry.device(school) for _ in range(3)]
    registry.device(school, "gateway")
    registry.user("ops", "county", "421303", role="operations")
    r = api.post("/api/v1/scopes/county/421303/commands", json={"kind": "board", "name": "power_schedule",
                 "params": {"on": "07:30", "off": "17:30"}, "ttl_s": 600}, headers=login(api, "ops"))
    assert r.status_code == 202 and r.json()["devices"] == 3 and r.json()["published"] == 3
    rows = db.execute("SELECT device_id FROM device_command WHERE batch_id = %s ORDER BY device_id",
                      (r.json()["batch_id"],)).fetchall()
    assert [x["device_id"] for x in rows] == sorted(boards)


def test_a_device_shows_its_counter_anomalies(db, registry, api):
    """A board whose counter jumped, then reset, shows both on its own page, newest first; only the
    reset was in the last 30 days."""
    mine, _theirs = _two_counties(registry)
    board = registry.device(mine)
    registry.user("school-user", "school", mine)
    now = datetime.now(UTC).replace(microsecond=0)
    for at, value in ((now - timedelta(days=40), 28_600), (now - timedelta(days=40, minutes=-1), 28_660),
                      (now - timedelta(days=40, minutes=-2), 2_903_000), (now - timedelta(days=1), 100),
                      (now - timedelta(days=1, minutes=-1), 160)):
        db.execute("INSERT INTO board_telemetry (device_id, time, seq, power_on, screen_on, active_use_s) "
                   "VALUES (%s, %s, %s, true, true, %s)", (board, at, int(at.timestamp()), value))
    detail = api.get(f"/api/v1/devices/{board}", headers=login(api, "school-user")).json()
    assert [(a["counter"], a["kind"], a["previous"], a["value"], a["counted"]) for a in detail["counter_anomalies"]] \
        == [("active_use_s", "reset", 2_903_000, 100, 0), ("active_use_s", "jump", 28_660, 2_903_000, 0)]
    assert detail["counter_anomalies_30d"] == 1
