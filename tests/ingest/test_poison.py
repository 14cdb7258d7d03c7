"""No value a device can send stops the writer: poison beside good readings, through the real write.

Every crafted value goes through `decode` and the same `store_batch` the ingest uses, into
the real database: the good readings beside it are stored, the bad one is dead-lettered
with its reason, and nothing raises. A row the database still refuses (a constraint the
validator does not know) is isolated by splitting the batch.
"""

import itertools
import json
from datetime import UTC, datetime, timedelta, timezone

import paho.mqtt.client as mqtt
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from core import contract
from core.contract import Channel
from core.db import open_pool
from core.mqtt import release
from core.settings import parse_mqtt_url
from core.telemetry_decode import COLUMNS, ClockPolicy, Record, Rejected, decode
from core.telemetry_write import store_batch
from tests.fixtures.devices import wait_for

POLICY = ClockPolicy(timedelta(minutes=5), timedelta(hours=1), timedelta(days=7))
_seq = itertools.count(1_000)

# Past every column type's range, and past what the quantities can be.
REAL_OVERFLOW = 1e39  # real columns hold up to 3.4e38
INT4_OVERFLOW = 2**31
INT8_OVERFLOW = 2**63


def now() -> datetime:
    return datetime.now(UTC)


def board(**overrides) -> dict:
    return {"v": 1, "ts": now().isoformat(), "seq": next(_seq), "kind": "board", "power_on": True,
            "screen_on": True, "active_use_s": 3600, **overrides}


def gateway(**overrides) -> dict:
    return {"v": 1, "ts": now().isoformat(), "seq": next(_seq), "kind": "gateway", "uplink_mbps": 100,
            "rx_mbps": 10, "tx_mbps": 5, "aps_total": 4, "aps_online": 4, "wifi_clients": 30, **overrides}


def recorder(**overrides) -> dict:
    return {"v": 1, "ts": now().isoformat(), "seq": next(_seq), "kind": "recorder", "recording": True,
            "streaming": False, "dropped_frames": 0, "cameras": [], **overrides}


def event(**overrides) -> dict:
    return {"v": 1, "ts": now().isoformat(), "seq": next(_seq), "type": "error", **overrides}


# (what it is, device kind, channel, raw payload): one of every class the tester found, and more
POISON = [
    ("real >= 1e39", "gateway", "telemetry", gateway(rx_mbps=REAL_OVERFLOW)),
    ("Infinity", "gateway", "telemetry", json.dumps(gateway()).replace('"rx_mbps": 10', '"rx_mbps": Infinity')),
    ("NaN", "board", "telemetry", json.dumps(board()).replace('"active_use_s": 3600',
                                                             '"active_use_s": 3600, "cpu_temp_c": NaN')),
    ("integer >= 2^31", "gateway", "telemetry", gateway(aps_total=INT4_OVERFLOW)),
    ("bigint >= 2^63", "board", "telemetry", board(active_use_s=INT8_OVERFLOW)),
    ("seq >= 2^63", "board", "telemetry", board(seq=INT8_OVERFLOW)),
    ("bigint counter >= 2^63", "recorder", "telemetry", recorder(dropped_frames=INT8_OVERFLOW)),
    ("real bitrate >= 1e39", "recorder", "telemetry", recorder(bitrate_kbps=REAL_OVERFLOW)),
    ("NUL in text", "board", "telemetry", board(foreground_app="app\u0000name")),
    ("NUL in an error code", "board", "telemetry", board(error_codes=["E\u00001"])),
    ("NUL in a lesson id", "recorder", "telemetry", recorder(lesson_id="L\u0000")),
    ("NUL in event detail", "board", "event", event(detail={"k": "a\u0000b"})),
    ("NUL in a detail key", "board", "event", event(detail={"a\u0000": 1})),
    ("NaN in event detail", "board", "event", json.dumps(event(detail={"x": 1})).replace('"x": 1', '"x": NaN')),
    ("lone surrogate", "board", "telemetry", json.dumps(board(os_version="X")).replace('"X"', '"\\ud800"')),
    ("NUL in a status", "board", "status", '{"v": 1, "ts": "2026-11-24T00:00:00+00:00", "online": true, '
                                            '"reason": "birth\\u0000"}'),
    ("year 10000", "board", "telemetry", json.dumps(board()).replace(now().isoformat()[:4], "10000", 1)),
]


def payload_bytes(body) -> bytes:
    return (body if isinstance(body, str) else json.dumps(body)).encode()


@pytest.fixture
def pool(database_url):
    with open_pool(database_url, min_size=1, max_size=2, name="poison-test") as p:
        yield p


@pytest.fixture
def fleet(registry) -> dict[str, str]:
    """One registered device of each kind, by kind."""
    registry.area()
    school = registry.school()
    return {kind: registry.device(school, kind) for kind in ("board", "gateway", "recorder")}


def _decode(messages: list[tuple[str, str, bytes]]) -> tuple[list[Record], list[Rejected]]:
    records, rejected = [], []
    for device_id, channel, body in messages:
        result = decode(f"edu/dev/{device_id}/{channel}", body, now(), POLICY)
        (records if isinstance(result, Record) else rejected).append(result)
    return records, rejected


@pytest.mark.parametrize(("what", "kind", "channel", "body"), POISON, ids=[p[0] for p in POISON])
def test_a_poison_value_beside_good_readings_is_dead_lettered_and_the_rest_stored(
        what, kind, channel, body, db, pool, fleet):
    device = fleet[kind]
    good = [(fleet["board"], "telemetry", payload_bytes(board())) for _ in range(3)]
    records, rejected = _decode([good[0], (device, channel, payload_bytes(body)), *good[1:]])
    outcome = store_batch(pool, records, rejected)
    assert outcome.stored["board_telemetry"] == 3
    letters = db.execute("SELECT device_id, reason, payload FROM dead_letter").fetchall()
    assert len(letters) == 1, letters
    assert letters[0]["device_id"] == device and letters[0]["reason"]
    assert bytes(letters[0]["payload"]) == payload_bytes(body), "kept whole"


def test_a_row_the_database_still_refuses_is_isolated_and_the_batch_commits(db, pool, fleet):
    # A rule the validator does not know about: the database is the last word.
    db.execute("ALTER TABLE board_telemetry ADD CONSTRAINT test_cool CHECK (cpu_temp_c < 100)")
    try:
        bodies = [board(cpu_temp_c=50.0) for _ in range(9)]
        bodies.insert(6, board(cpu_temp_c=120.0))
        records, rejected = _decode([(fleet["board"], "telemetry", payload_bytes(b)) for b in bodies])
        outcome = store_batch(pool, records, rejected)
    finally:
        db.execute("ALTER TABLE board_telemetry DROP CONSTRAINT test_cool")
    assert outcome.stored["board_telemetry"] == 9 and outcome.splits >= 1
    [letter] = db.execute("SELECT reason, payload FROM dead_letter").fetchall()
    assert "database refused" in letter["reason"] and "23514" in letter["reason"]
    assert json.loads(bytes(letter["payload"]))["cpu_temp_c"] == 120.0


def _row_of(record: Record, **changes) -> Record:
    row = list(record.row)
    for column, value in changes.items():
        row[COLUMNS[record.table].index(column)] = value
    return Record(record.device_id, record.table, tuple(row), record.time, record.seq, record.state, record.topic,
                  record.payload)


@pytest.mark.parametrize(("kind", "column", "value"), [
    ("board", "cpu_temp_c", 1e39), ("board", "cpu_load", 1e-40), ("gateway", "aps_total", 2**31),
    ("gateway", "rx_mbps", -3.5e38), ("recorder", "cameras_total", 2**15), ("board", "active_use_s", 2**63)])
def test_a_value_past_its_column_type_is_refused_by_the_binary_write(kind, column, value, db, pool, fleet):
    """The write sends rows in binary, which PostgreSQL takes as packed: a value past its column's
    type (beyond what the contract lets through) must still be refused, not stored as infinity or
    wrapped around, and the rows beside it stored."""
    maker = {"board": board, "gateway": gateway, "recorder": recorder}[kind]
    good = [(fleet["board"], "telemetry", payload_bytes(board())) for _ in range(4)]
    records, _ = _decode([*good[:2], (fleet[kind], "telemetry", payload_bytes(maker())), *good[2:]])
    records[2] = _row_of(records[2], **{column: value})
    outcome = store_batch(pool, records, [])
    assert outcome.stored["board_telemetry"] == 4 and sum(outcome.stored.values()) == 4
    [letter] = db.execute("SELECT reason, device_id FROM dead_letter").fetchall()
    assert letter["reason"].startswith("database refused") and letter["device_id"] == fleet[kind]
    if column != "active_use_s":  # bigint: psycopg refuses to pack it at all
        assert column in letter["reason"] and "out of range" in letter["reason"]


def test_the_binary_write_stores_every_value_as_read(db, pool, fleet):
    """Reals, integers, text, arrays, JSON and times with offsets, read back as they were sent."""
    at = datetime(2026, 11, 24, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8, minutes=45)))
    bodies = [
        (fleet["board"], "telemetry", board(ts=at.isoformat(), cpu_temp_c=51.25, cpu_load=0.1, mem_load=1.0,
                                             disk_used_pct=0.0, foreground_app="希沃白板 5", os_version="a'b\"c\\d",
                                             error_codes=["E1", "", "{x,y}", "NULL"])),
        (fleet["gateway"], "telemetry", gateway(uplink_mbps=0.01, rx_mbps=1e6, latency_ms=3600000, aps_total=10**6)),
        (fleet["recorder"], "telemetry", recorder(cameras=[{"role": "teacher", "online": True, "brightness": 12.5},
                                                           {"role": "blackboard", "online": False}],
                                                  lesson_id="L-1", bitrate_kbps=2048.5)),
        (fleet["board"], "event", event(detail={"why": "断电", "n": [1, 2.5, None], "deep": {"x": True}},
                                        lesson_id="L-1", lesson_role="main")),
    ]
    records, rejected = _decode([(d, c, payload_bytes(b)) for d, c, b in bodies])
    assert not rejected
    store_batch(pool, records, [])
    b = db.execute("SELECT * FROM board_telemetry").fetchone()
    assert b["time"] == at and (b["cpu_temp_c"], b["cpu_load"], b["mem_load"], b["disk_used_pct"]) == \
        (51.25, pytest.approx(0.1, rel=1e-7), 1.0, 0.0)
    assert (b["foreground_app"], b["os_version"], b["error_codes"]) == \
        ("希沃白板 5", "a'b\"c\\d", ["E1", "", "{x,y}", "NULL"])
    g = db.execute("SELECT * FROM gateway_telemetry").fetchone()
    assert (g["uplink_mbps"], g["rx_mbps"], g["latency_ms"], g["aps_total"]) == \
        (pytest.approx(0.01, rel=1e-7), 1e6, 3600000, 10**6)
    r = db.execute("SELECT * FROM recorder_telemetry").fetchone()
    assert (r["cameras_total"], r["cameras_online"], r["lesson_id"], r["bitrate_kbps"]) == (2, 1, "L-1", 2048.5)
    assert r["cameras"] == [{"role": "teacher", "online": True, "brightness": 12.5, "frozen_frames": 0},
                            {"role": "blackboard", "online": False, "brightness": None, "frozen_frames": 0}]
    e = db.execute("SELECT * FROM device_event").fetchone()
    assert e["detail"] == {"why": "断电", "n": [1, 2.5, None], "deep": {"x": True}} and e["lesson_role"] == "main"


def test_a_board_cannot_pose_as_its_schools_gateway(db, pool, fleet):
    records, rejected = _decode([(fleet["board"], "telemetry", payload_bytes(gateway(rx_mbps=900)))])
    store_batch(pool, records, rejected)
    assert db.execute("SELECT count(*) AS n FROM gateway_telemetry").fetchone()["n"] == 0
    [letter] = db.execute("SELECT reason FROM dead_letter").fetchall()
    assert letter["reason"].startswith("kind mismatch")
    state = db.execute("SELECT last_values FROM device_state WHERE device_id = %s", (fleet["board"],)).fetchone()
    assert state is None, "the refused reading says nothing about the device"


def test_a_retired_device_is_dead_lettered_as_retired_and_its_state_left_alone(db, pool, fleet):
    db.execute("UPDATE device_all SET retired_at = now() WHERE id = %s", (fleet["board"],))
    records, rejected = _decode([(fleet["board"], "telemetry", payload_bytes(board())),
                                 (fleet["gateway"], "telemetry", payload_bytes(gateway()))])
    store_batch(pool, records, rejected)
    assert [r["device_id"] for r in db.execute("SELECT device_id FROM gateway_telemetry")] == [fleet["gateway"]]
    assert db.execute("SELECT count(*) AS n FROM board_telemetry").fetchone()["n"] == 0
    [letter] = db.execute("SELECT reason, device_id FROM dead_letter").fetchall()
    assert letter["reason"].startswith("retired device") and letter["device_id"] == fleet["board"]
    assert db.execute("SELECT 1 FROM device_state WHERE device_id = %s", (fleet["board"],)).fetchone() is None


# Values at and beyond every column type's limits, for property-based batches.
EXTREME_INTS = st.sampled_from([0, 1, -1, 2**15, 2**31 - 1, 2**31, 2**53, 2**62, 2**63 - 1, 2**63, 2**64, -2**63,
                                10**30])
EXTREME_FLOATS = st.one_of(
    st.sampled_from([0.0, -0.0, 1e-45, 3.4e38, 3.5e38, 1e39, 1.7e308, -1e39, 255.0, 100.0, 100.0001]),
    st.floats(allow_nan=False, allow_infinity=False))
NASTY_TEXT = st.one_of(st.text(max_size=80), st.sampled_from(["\u0000", "a\u0000", "\ud800", "x" * 200, ""]))
FIELD_VALUES = st.one_of(EXTREME_INTS, EXTREME_FLOATS, NASTY_TEXT, st.booleans(), st.none(),
                         st.lists(NASTY_TEXT, max_size=3), st.dictionaries(NASTY_TEXT, EXTREME_FLOATS, max_size=3))
FIELDS = {
    "board": ["active_use_s", "cpu_temp_c", "cpu_load", "mem_load", "disk_used_pct", "foreground_app",
              "os_version", "error_codes", "seq"],
    "gateway": ["uplink_mbps", "rx_mbps", "tx_mbps", "latency_ms", "loss_pct", "aps_total", "aps_online",
                "wifi_clients", "seq"],
    "recorder": ["bitrate_kbps", "dropped_frames", "storage_free_gb", "lesson_id", "seq"],
    "event": ["lesson_id", "detail", "seq"],
}
MAKERS = {"board": board, "gateway": gateway, "recorder": recorder, "event": event}


def _message(fleet, shape: str, overrides: dict, nan: bool) -> tuple[str, str, bytes]:
    body = json.dumps(MAKERS[shape](**overrides), allow_nan=True)
    if nan:  # non-finite literals that Python's JSON writes and some devices do too
        body = body.replace("0.5", "NaN")
    device = fleet["board" if shape == "event" else shape]
    return device, "event" if shape == "event" else "telemetry", body.encode(errors="surrogatepass")


@st.composite
def messages(draw):
    shape = draw(st.sampled_from(sorted(FIELDS)))
    names = draw(st.lists(st.sampled_from(FIELDS[shape]), max_size=3, unique=True))
    overrides = {name: draw(FIELD_VALUES) for name in names}
    return shape, overrides, draw(st.booleans())


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batch=st.lists(messages(), min_size=1, max_size=8))
def test_no_batch_of_extreme_values_stops_the_write_and_none_is_lost(batch, db, pool, fleet):
    counts = "SELECT (SELECT count(*) FROM board_telemetry) + (SELECT count(*) FROM gateway_telemetry) " \
             "+ (SELECT count(*) FROM recorder_telemetry) + (SELECT count(*) FROM device_event) AS rows, " \
             "(SELECT count(*) FROM dead_letter) AS letters"
    before = db.execute(counts).fetchone()
    good = [(fleet["gateway"], "telemetry", payload_bytes(gateway())) for _ in range(2)]
    raw = [_message(fleet, *m) for m in batch]
    records, rejected = _decode([good[0], *raw, good[1]])
    outcome = store_batch(pool, records, rejected)  # must not raise, whatever the values
    after = db.execute(counts).fetchone()
    stored, letters = after["rows"] - before["rows"], after["letters"] - before["letters"]
    assert stored == sum(outcome.stored.values())
    assert stored + letters + outcome.duplicates == len(raw) + 2, "every message is stored or dead-lettered"
    assert outcome.stored["gateway_telemetry"] >= 2, "the good readings beside them are stored"


def test_poison_through_the_broker_does_not_stop_the_ingest(database_url, broker, db, fleet, start_ingest):
    """The tester's outage: one gateway's out-of-range reading; every other reading still lands."""
    start_ingest()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="poison-pub", protocol=mqtt.MQTTv5)
    address = parse_mqtt_url(broker.url)
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        for _what, kind, channel, body in POISON:
            client.publish(contract.topic(fleet[kind], Channel(channel)), payload_bytes(body), qos=1)
            client.publish(contract.topic(fleet["board"], Channel.TELEMETRY), payload_bytes(board()), qos=1)
        wait_for(lambda: db.execute("SELECT count(*) AS n FROM board_telemetry").fetchone()["n"] == len(POISON))
        letters = wait_for(lambda: (n := db.execute("SELECT count(*) AS n FROM dead_letter").fetchone()["n"])
                           >= len(POISON) and n)
        assert letters == len(POISON)
    finally:
        client.disconnect()
        release(client)


def test_a_dead_writer_takes_readiness_down_and_acknowledges_nothing(database_url, broker, db, fleet,
                                                                     start_ingest, monkeypatch):
    def broken(*_args):
        raise RuntimeError("a bug, not a data problem")

    monkeypatch.setattr("ingest.service.store_batch", broken)
    service = start_ingest()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="dead-writer-pub", protocol=mqtt.MQTTv5)
    address = parse_mqtt_url(broker.url)
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        client.publish(contract.topic(fleet["board"], Channel.TELEMETRY), payload_bytes(board()), qos=1)
        wait_for(service.failed.is_set)
        readiness = service.readiness()
        assert readiness["ready"] is False and readiness["writer_alive"] is False
        assert db.execute("SELECT count(*) AS n FROM board_telemetry").fetchone()["n"] == 0
    finally:
        client.disconnect()
        release(client)
        monkeypatch.undo()


def test_the_sweep_waits_until_silence_means_something(database_url, db, registry, fleet, start_ingest):
    """Devices seen long ago are not declared offline by a worker that just (re)connected or cannot write."""
    for device in fleet.values():
        registry.device_state(device, online=True, last_seen=datetime.now(UTC) - timedelta(hours=1))
    online = "SELECT count(*) AS n FROM device_state WHERE online"
    service = start_ingest(heartbeat_timeout_s=3, heartbeat_sweep_s=1)
    service.failed.set()  # as if its writer had died: the silence is this worker's, not the devices'
    try:
        wait_for(lambda: service.link.connected.is_set())
        with pytest.raises(pytest.fail.Exception):
            wait_for(lambda: db.execute(online).fetchone()["n"] < 3, timeout=4)
    finally:
        service.failed.clear()
    wait_for(lambda: db.execute(online).fetchone()["n"] == 0, timeout=15)


def test_a_backlog_within_the_contracts_rate_is_never_flood_limited(database_url, broker, db, fleet, start_ingest):
    """A device at 2 readings/s for 11 minutes while its worker was away: all 1,320 stored."""
    service = start_ingest("away", device_rate_per_s=2, device_burst=1200)
    service.stop()  # away; its persistent session keeps queueing
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="backlog-pub", protocol=mqtt.MQTTv5)
    address = parse_mqtt_url(broker.url)
    client.connect(address.host, address.port)
    client.loop_start()
    start = now() - timedelta(minutes=11)
    try:
        infos = [client.publish(contract.topic(fleet["board"], Channel.TELEMETRY),
                                payload_bytes(board(ts=(start + timedelta(seconds=i / 2)).isoformat(), seq=i)), qos=1)
                 for i in range(1320)]
        for info in infos:
            info.wait_for_publish(30)
        back = start_ingest("away", device_rate_per_s=2, device_burst=1200)
        wait_for(lambda: db.execute("SELECT count(*) AS n FROM board_telemetry").fetchone()["n"] == 1320, timeout=60)
        assert db.execute("SELECT count(*) AS n FROM dead_letter").fetchone()["n"] == 0
        assert back.metrics.flood_limited._value.get() == 0
    finally:
        client.disconnect()
        release(client)


def test_connection_errors_propagate_for_a_retry(pool, fleet):
    """Only data problems are split; an unreachable database is the caller's to retry."""
    records, rejected = _decode([(fleet["board"], "telemetry", payload_bytes(board()))])
    pool.close()
    with pytest.raises((psycopg.OperationalError, psycopg.InterfaceError)):
        store_batch(pool, records, rejected)
