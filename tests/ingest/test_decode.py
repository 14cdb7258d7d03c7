"""Validation of raw messages against the device contract (no broker, no database)."""

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from core.telemetry_decode import ClockPolicy, Record, Rejected, decode

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
POLICY = ClockPolicy(timedelta(minutes=5), timedelta(hours=1), timedelta(days=7))


def board(**overrides) -> bytes:
    body = {"v": 1, "ts": NOW.isoformat(), "seq": 7, "kind": "board", "power_on": True, "screen_on": True,
            "active_use_s": 3600, "cpu_temp_c": 51.5, "error_codes": ["E1"]}
    return json.dumps(body | overrides).encode()


def test_a_valid_board_reading_becomes_a_row():
    r = decode("edu/dev/B01/telemetry", board(), NOW, POLICY)
    assert isinstance(r, Record)
    assert (r.table, r.device_id, r.seq, r.time) == ("board_telemetry", "B01", 7, NOW)
    assert r.row[5] == 3600 and r.row[-1] is False


def test_wrong_types_are_rejected_with_the_field_named():
    r = decode("edu/dev/B01/telemetry", board(active_use_s="lots"), NOW, POLICY)
    assert isinstance(r, Rejected) and "active_use_s" in r.reason and r.device_id == "B01"


def test_not_json_and_unknown_versions_are_rejected():
    assert isinstance(decode("edu/dev/B01/telemetry", b"\xff\x00garbage", NOW, POLICY), Rejected)
    r = decode("edu/dev/B01/telemetry", board(v=2), NOW, POLICY)
    assert isinstance(r, Rejected) and "v" in r.reason


def test_oversized_payloads_are_rejected_unread():
    r = decode("edu/dev/B01/telemetry", b"{" + b" " * 20000 + b"}", NOW, POLICY)
    assert isinstance(r, Rejected) and "exceeds" in r.reason


def test_topics_outside_the_contract_are_rejected():
    assert isinstance(decode("edu/dev/B01/nonsense", board(), NOW, POLICY), Rejected)
    assert isinstance(decode("other/B01/telemetry", board(), NOW, POLICY), Rejected)


def test_clock_checks_flag_near_future_and_refuse_far_off_times():
    near = decode("edu/dev/B01/telemetry", board(ts=(NOW + timedelta(minutes=20)).isoformat()), NOW, POLICY)
    assert isinstance(near, Record) and near.row[-1] is True
    late = decode("edu/dev/B01/telemetry", board(ts=(NOW - timedelta(hours=3)).isoformat()), NOW, POLICY)
    assert isinstance(late, Record) and late.row[-1] is False  # late is normal after an outage
    for far in (NOW + timedelta(days=2), NOW - timedelta(days=30)):
        r = decode("edu/dev/B01/telemetry", board(ts=far.isoformat()), NOW, POLICY)
        assert isinstance(r, Rejected) and "too far" in r.reason


def test_a_last_will_is_dated_when_it_arrives():
    will = json.dumps({"v": 1, "ts": (NOW - timedelta(hours=5)).isoformat(), "online": False, "reason": "will"})
    r = decode("edu/dev/B01/status", will.encode(), NOW, POLICY)
    assert isinstance(r, Record) and r.time == NOW and r.state == {"online": False}


@settings(deadline=None, max_examples=300)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise(payload):
    for channel in ("telemetry", "event", "status", "ack"):
        assert isinstance(decode(f"edu/dev/B01/{channel}", payload, NOW, POLICY), Record | Rejected)


@settings(deadline=None, max_examples=300)
@given(st.dictionaries(st.sampled_from(["v", "ts", "seq", "kind", "power_on", "screen_on", "active_use_s"]),
                       st.one_of(st.none(), st.integers(), st.text(max_size=20), st.booleans(), st.floats())))
def test_arbitrary_json_objects_never_raise(body):
    payload = json.dumps(body).encode()
    assert isinstance(decode("edu/dev/B01/telemetry", payload, NOW, POLICY), Record | Rejected)


def test_status_and_ack_times_are_held_to_the_clock_policy():
    # a status dated in year 1 once reached device_state and broke every read of the device
    ancient = json.dumps({"v": 1, "ts": "0001-01-01T00:00:00+00:01", "online": False, "reason": "shutdown"})
    r = decode("edu/dev/B01/status", ancient.encode(), NOW, POLICY)
    assert isinstance(r, Rejected) and r.reason.startswith("clock")
    ack = json.dumps({"v": 1, "id": "c1", "ts": "0001-01-01T00:00:00+00:00", "result": "ok"})
    assert isinstance(decode("edu/dev/B01/ack", ack.encode(), NOW, POLICY), Rejected)
    will = json.dumps({"v": 1, "ts": (NOW - timedelta(days=30)).isoformat(), "online": False, "reason": "will"})
    assert isinstance(decode("edu/dev/B01/status", will.encode(), NOW, POLICY), Record), "a will carries the connect time"


def test_magnitudes_a_real_column_cannot_hold_are_zero_and_a_vanishing_uplink_is_refused():
    r = decode("edu/dev/B01/telemetry", board(cpu_load=1e-300), NOW, POLICY)
    assert isinstance(r, Record) and r.row[7] == 0.0
    gateway = {"v": 1, "ts": NOW.isoformat(), "seq": 1, "kind": "gateway", "uplink_mbps": 1e-40, "rx_mbps": 1e6,
               "tx_mbps": 1, "aps_total": 1, "aps_online": 1, "wifi_clients": 1}
    r = decode("edu/dev/G01/telemetry", json.dumps(gateway).encode(), NOW, POLICY)
    assert isinstance(r, Rejected) and "uplink_mbps" in r.reason  # it divides the rollups' rates


def test_types_are_read_as_the_schemas_say_not_leniently():
    for lenient in (board(power_on="true"), board(active_use_s=1.5), board(ts=1764460800)):
        r = decode("edu/dev/B01/telemetry", lenient, NOW, POLICY)
        assert isinstance(r, Rejected), lenient
    status = json.dumps({"v": 1, "ts": NOW.isoformat(), "online": "yes", "reason": "birth"}).encode()
    assert isinstance(decode("edu/dev/B01/status", status, NOW, POLICY), Rejected)


def test_the_brokers_refusal_notice_becomes_a_dead_letter_under_the_refused_topic():
    notice = b'{"topic":"edu/dev/B1-0001/telemetry","bytes":20480,"limit":16384}'
    out = decode("edu/dev/B1-0001/refused", notice, NOW, POLICY)
    assert out == Rejected("edu/dev/B1-0001/telemetry", notice,
                           "payload too large: 20480 bytes exceeds 16384 (refused by the broker)", "B1-0001")
    for bad in (b"", b"{}", b'{"topic":"t","bytes":"20480","limit":1}', b'{"topic":"a\\u0000b","bytes":1,"limit":1}',
                b'{"topic":"t","bytes":-1,"limit":1}'):
        out = decode("edu/dev/B1-0001/refused", bad, NOW, POLICY)
        assert isinstance(out, Rejected) and out.reason.startswith("invalid") and out.device_id == "B1-0001", bad
