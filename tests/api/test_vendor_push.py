"""The HTTP push for vendor platforms: stored exactly once however often a batch is retried, each
reading judged as the MQTT ingest judges it, keys bound to their vendor's devices."""

import itertools
import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
import uvicorn

from api.ingest_push import service
from api.ingest_push.models import MAX_BODY_BYTES, MAX_READINGS
from core import contract
from core.flood_limit import DeviceRateLimit
from core.telemetry_decode import decode

_seq = itertools.count(1_700_000_000_000)


def board(**overrides) -> dict:
    at = overrides.pop("at", datetime.now(UTC) - timedelta(minutes=1))
    return {"v": 1, "ts": at.isoformat(), "seq": next(_seq), "kind": "board", "power_on": True,
            "screen_on": True, "active_use_s": 3600, **overrides}


@pytest.fixture(autouse=True)
def fresh_flood_limit(monkeypatch):
    """Each test starts with full buckets (the limit lives as long as the API process)."""
    monkeypatch.setattr(service, "_LIMIT", DeviceRateLimit(rate_per_s=2.0, burst=1200, horizon_s=3600.0))


@pytest.fixture
def vendor(db, registry):
    """Two boards of vendor 'vendor', one of vendor 'other', and a key of 'vendor'."""
    registry.area()
    school = registry.school()
    mine = [registry.device(school), registry.device(school)]
    theirs = registry.device(school)
    db.execute("UPDATE device SET vendor = 'other' WHERE id = %s", (theirs,))
    key = service.issue_key(db, "vendor", "test")
    return {"key": key, "mine": mine, "theirs": theirs}


def _push(client, key, readings, channel="telemetry", **kwargs):
    return client.post(f"/api/v1/ingest/{channel}", json={"readings": readings},
                       headers={"X-Vendor-Key": key}, **kwargs)


def _rows(db, device_id, table="board_telemetry") -> int:
    return db.execute(f"SELECT count(*) AS n FROM {table} WHERE device_id = %s",  # noqa: S608
                      (device_id,)).fetchone()["n"]


@pytest.fixture
def server(api):
    """The API served on a real socket (the `api` fixture has migrated and pointed the settings)."""
    from api.main import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, name="uvicorn", daemon=True)
    thread.start()
    while not srv.started:
        thread.join(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def test_a_retry_storm_stores_each_reading_once(server, db, vendor):
    readings = [board(device_id=d) for d in vendor["mine"] for _ in range(50)]

    def send(_):
        with httpx.Client(base_url=server, timeout=60) as client:
            return _push(client, vendor["key"], readings)

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(send, range(20)))
    assert {a.status_code for a in answers} == {202}
    outcomes = [a.json() for a in answers]
    assert sum(o["stored"] for o in outcomes) == 100
    assert all(o["stored"] + o["duplicates"] == 100 and o["dead_lettered"] == 0 for o in outcomes)
    assert [_rows(db, d) for d in vendor["mine"]] == [50, 50]
    assert db.execute("SELECT count(*) AS n FROM dead_letter").fetchone()["n"] == 0


def test_a_dropped_request_then_retried_loses_and_doubles_nothing(server, db, vendor, database_url):
    readings = [board(device_id=vendor["mine"][0]) for _ in range(30)]
    # hold the vendor's push lock, so the first attempt is still waiting when its client gives up
    with psycopg.connect(database_url) as blocker:
        blocker.execute("SELECT pg_advisory_xact_lock(%s, hashtext('vendor'))", (service._PUSH_LOCK,))
        with httpx.Client(base_url=server, timeout=0.5) as client, pytest.raises(httpx.TimeoutException):
            _push(client, vendor["key"], readings)
        blocker.rollback()
    with httpx.Client(base_url=server, timeout=60) as client:
        retried = _push(client, vendor["key"], readings)
    assert retried.status_code == 202
    assert retried.json()["stored"] + retried.json()["duplicates"] == 30
    assert _rows(db, vendor["mine"][0]) == 30


def test_a_key_is_valid_only_for_its_vendors_devices(api, db, vendor):
    r = _push(api, vendor["key"], [board(device_id=vendor["theirs"]), board(device_id="X-nobody-000"),
                                   board(device_id=vendor["mine"][0])])
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["stored"], body["refused"], body["dead_lettered"]) == (1, 2, 0)
    assert [x["index"] for x in body["rejected"]] == [0, 1]
    assert all(x["reason"] == "unknown device id: not a device of vendor" for x in body["rejected"])
    assert _rows(db, vendor["theirs"]) == 0
    reasons = {row["reason"] for row in db.execute("SELECT reason FROM dead_letter")}
    assert reasons == {f"vendor mismatch: {vendor['theirs']} is not a device of vendor", "unknown device id"}


def test_a_revoked_or_unknown_key_is_refused(api, db, vendor):
    reading = board(device_id=vendor["mine"][0])
    assert _push(api, "vk_not-a-key", [reading]).status_code == 401
    assert api.post("/api/v1/ingest/telemetry", json={"readings": [reading]}).status_code == 401
    assert service.revoke_keys(db, "vendor", "test") == 1
    assert _push(api, vendor["key"], [reading]).status_code == 401
    assert _rows(db, vendor["mine"][0]) == 0
    assert db.execute("SELECT count(*) AS n FROM audit_log WHERE target = 'vendor:vendor'").fetchone()["n"] == 2


def test_invalid_readings_are_dead_lettered_with_the_ingests_reasons(api, db, vendor):
    device = vendor["mine"][0]
    bad = [board(device_id=device, power_on="true"), board(device_id=device, at=datetime.now(UTC) + timedelta(hours=2)),
           {"device_id": device, "v": 1, "kind": "gateway", "seq": 1}, board(device_id=device, cpu_load=float("nan"))]
    good = board(device_id=device)
    # sent as Python writes JSON: the NaN reaches the contract's check, as over MQTT
    r = api.post("/api/v1/ingest/telemetry", content=json.dumps({"readings": [*bad, good]}),
                 headers={"X-Vendor-Key": vendor["key"], "Content-Type": "application/json"})
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["stored"], body["dead_lettered"], body["refused"]) == (1, 4, 0)
    stored = [row["reason"] for row in db.execute("SELECT reason FROM dead_letter ORDER BY id")]
    now = datetime.now(UTC)
    expected = []
    for reading in bad:
        payload = json.dumps({k: v for k, v in reading.items() if k != "device_id"}).encode()
        expected.append(decode(contract.topic(device, contract.Channel.TELEMETRY), payload, now, service.POLICY).reason)
    assert stored == expected
    assert [x["reason"] for x in body["rejected"]] == expected
    assert stored[0].startswith("invalid board.power_on") and stored[1].startswith("clock")


def test_a_flood_is_limited_as_the_ingest_limits_it(api, db, vendor):
    at = datetime.now(UTC) - timedelta(minutes=1)
    r = _push(api, vendor["key"], [board(device_id=vendor["mine"][0], at=at) for _ in range(1250)])
    assert r.status_code == 202
    assert (r.json()["stored"], r.json()["dead_lettered"]) == (1200, 50)
    assert {x["reason"].split(":")[0] for x in r.json()["rejected"]} == {"flood limit"}


def test_oversized_and_malformed_batches_are_refused(api, db, vendor):
    key = {"X-Vendor-Key": vendor["key"]}
    too_many = [{"device_id": vendor["mine"][0]}] * (MAX_READINGS + 1)
    assert _push(api, vendor["key"], too_many).status_code == 422
    huge = b'{"readings": [{"device_id": "x", "pad": "' + b"x" * MAX_BODY_BYTES + b'"}]}'
    assert api.post("/api/v1/ingest/telemetry", content=huge, headers=key).status_code == 413
    assert api.post("/api/v1/ingest/telemetry", content=b"not json", headers=key).status_code == 400
    assert api.post("/api/v1/ingest/telemetry", content=b"[" * 100_000, headers=key).status_code == 400
    assert api.post("/api/v1/ingest/telemetry", json={"readings": []}, headers=key).status_code == 422
    assert api.post("/api/v1/ingest/telemetry", json={"rows": []}, headers=key).status_code == 422
    assert _push(api, vendor["key"], [board(device_id=vendor["mine"][0])], channel="status").status_code == 422
    odd = _push(api, vendor["key"], [{"device_id": 5}, {"device_id": "a\x00b"}, "not an object"])
    assert odd.status_code == 422  # a reading must be an object
    readings = [{"device_id": 5}, {"device_id": "a\x00b"}, {}, {"device_id": [1]},
                {"device_id": vendor["mine"][0], "v": 1, "kind": "board", "\ud800": {}}]
    odd = api.post("/api/v1/ingest/telemetry", content=json.dumps({"readings": readings}), headers=key)
    assert odd.status_code == 202 and (odd.json()["refused"], odd.json()["dead_lettered"]) == (4, 1)
    assert db.execute("SELECT count(*) AS n FROM board_telemetry").fetchone()["n"] == 0


def test_pushed_readings_move_the_device_state_as_mqtt_ones_do(api, db, vendor):
    device = vendor["mine"][0]
    first, last = board(device_id=device, active_use_s=100), board(device_id=device, active_use_s=160)
    assert _push(api, vendor["key"], [first, last]).status_code == 202
    state = db.execute("SELECT online, last_seq, in_use, last_values FROM device_state WHERE device_id = %s",
                       (device,)).fetchone()
    assert state["online"] and state["last_seq"] == last["seq"] and state["in_use"]
    assert state["last_values"]["active_use_s"] == 160
