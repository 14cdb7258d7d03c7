"""The fast path for telemetry decides exactly as the contract's models do.

`decode` first tries msgspec structs bounded by the models' own fields and gives the models
anything it is unsure of. Every payload here is decoded both ways — by `decode` and by the
models alone — and the two must agree: the same row to the value and its type, or the same
refusal with the same reason. Payloads are generated from the models' fields: values inside,
at and just past every bound, wrong types, missing and unknown fields, times written every way
the models read one and some they refuse, text with and without escapes.
"""

import json
import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum

import annotated_types
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime, BaseModel

from core import telemetry_decode
from core.contract import (
    MAX_PAYLOAD_BYTES,
    BoardTelemetry,
    Camera,
    GatewayTelemetry,
    RecorderTelemetry,
)
from core.telemetry_decode import FAST_STRUCTS, ClockPolicy, Record, Rejected, decode

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
POLICY = ClockPolicy(timedelta(minutes=5), timedelta(hours=1), timedelta(days=7))
MODELS = {"board": BoardTelemetry, "recorder": RecorderTelemetry, "gateway": GatewayTelemetry}
TOPIC = "edu/dev/DEV-01/telemetry"
EXAMPLES = 150


def by_models(payload: bytes) -> Record | Rejected:
    """What the contract's models alone make of a telemetry payload (the path before the fast one)."""
    return telemetry_decode._decode_telemetry(TOPIC, "DEV-01", payload, NOW, POLICY)


def by_models_guarded(payload: bytes) -> Record | Rejected:
    """The models' answer for a payload `decode` reads whole (not JSON at all is a refusal too)."""
    try:
        return by_models(payload)
    except Exception as exc:  # noqa: BLE001 - decode turns a ValidationError into a reason
        from pydantic import ValidationError
        assert isinstance(exc, ValidationError)
        return Rejected(TOPIC, payload, telemetry_decode._reason(exc), "DEV-01")


def same_value(a, b) -> bool:
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a.isoformat() == b.isoformat() and a.utcoffset() == b.utcoffset()
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def assert_same(payload: bytes) -> None:
    fast, models = decode(TOPIC, payload, NOW, POLICY), by_models_guarded(payload)
    assert type(fast) is type(models), (payload, fast, models)
    if isinstance(models, Rejected):
        assert (fast.reason, fast.device_id, fast.topic, fast.payload) == \
            (models.reason, models.device_id, models.topic, models.payload), payload
        return
    assert (fast.device_id, fast.table, fast.seq, fast.state, fast.topic, fast.payload) == \
        (models.device_id, models.table, models.seq, models.state, models.topic, models.payload)
    assert same_value(fast.time, models.time)
    assert len(fast.row) == len(models.row)
    for column, x, y in zip(telemetry_decode.COLUMNS[models.table], fast.row, models.row, strict=True):
        assert same_value(x, y), (column, x, y, payload)


def limits(field) -> dict:
    """A field's bounds as the contract states them: {"Ge": …, "Le": …, "MaxLen": …}."""
    names = {annotated_types.Ge: "ge", annotated_types.Le: "le", annotated_types.MaxLen: "max_length"}
    return {type(m).__name__: getattr(m, names[type(m)]) for m in field.metadata if type(m) in names}


def junk() -> st.SearchStrategy:
    return st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                     st.text(max_size=8), st.lists(st.integers(), max_size=2), st.just({}))


def times(valid: bool) -> st.SearchStrategy:
    """Device times near NOW (the clock policy lets most through) written every way the models read
    one; or, to spoil a reading, far off, impossible or written some way they refuse."""
    moments = st.timedeltas(min_value=timedelta(hours=-3), max_value=timedelta(minutes=70)).map(lambda d: NOW + d)
    offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
    iso = st.builds(lambda d, tz: d.astimezone(tz).isoformat(), moments, offsets)
    if valid:
        return st.one_of(iso, st.builds(lambda s, how: how(s), iso, st.sampled_from([
            lambda s: s[:19] + "Z", lambda s: s[:19] + ".5Z", lambda s: s.replace("T", " "), lambda s: s[:19] + "z",
            lambda s: s[:19] + ".1234567" + s[-6:], lambda s: s[:19] + ",5" + s[-6:], lambda s: s[:16] + s[-6:],
            lambda s: s[:19] + s[-6:].replace(":", ""), lambda s: s[:19] + "-00:00"])))
    far = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(
        lambda d: d.replace(tzinfo=UTC).isoformat())
    return st.one_of(far, st.builds(lambda s, how: how(s), iso, st.sampled_from([
        lambda s: s[:19], lambda s: s[:10], lambda s: s[:19] + "+24:00", lambda s: s[:19] + "+08",
        lambda s: s[:8] + "31" + s[10:], lambda s: s[:11] + "24" + s[13:], lambda s: s[:17] + "60" + s[19:]])),
        st.sampled_from(["0001-01-01T00:00:00+00:01", "0000-01-01T00:00:00Z", "", "2026-W48-2T00:00:00Z"]), junk())


def values(annotation, field, valid: bool) -> st.SearchStrategy:
    """Values for one model field: ones it allows (valid) — inside and at its bounds — or ones it
    does not: past its bounds, of another type, junk."""
    bounds = limits(field)
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):  # Optional[X], X | None
        inner = next(a for a in args if a is not type(None))
        return st.one_of(st.none(), values(inner, field, valid)) if valid else values(inner, field, valid)
    if typing.get_origin(annotation) is typing.Annotated:
        return values(args[0], field, valid)
    if typing.get_origin(annotation) is typing.Literal:
        return st.sampled_from(args) if valid else st.sampled_from([1.0, True, 2, "1", None, "other"])
    if typing.get_origin(annotation) is list:
        item = args[0]
        item_field = next((m for m in typing.get_args(item)[1:] if hasattr(m, "metadata")), field)
        nested = isinstance(item, type) and issubclass(item, BaseModel)
        items = objects(item) if nested else values(item, item_field, valid=True)
        longest = bounds.get("MaxLen", 8)
        if valid:
            return st.one_of(st.lists(items, max_size=3), items.map(lambda x: [x] * longest))
        bad_items = objects(item, spoiled=True) if nested else values(item, item_field, valid=False)
        return st.one_of(items.map(lambda x: [x] * (longest + 1)), st.lists(bad_items, min_size=1, max_size=2), junk())
    if annotation is AwareDatetime:
        return times(valid)
    if annotation is bool:
        return st.booleans() if valid else st.sampled_from([0, 1, "true", None, [], 1.0])
    if annotation in (int, float):
        low, high = bounds.get("Ge"), bounds.get("Le")
        if valid:
            edges = [x for x in (low, high, 0, 1, 1e-31, 1e-300) if (low is None or x >= low) and (high is None or x <= high)]
            inside = st.integers(int(low), int(high)) if annotation is int else st.floats(low, high)
            if annotation is float:
                inside = st.one_of(inside, st.integers(int(low) + 1, int(high)))  # a whole number for a real
            return st.one_of(inside, st.sampled_from([e for e in edges if annotation is float or e == int(e)]))
        past = [low - 1, high + 1, -1e-31, low - 1e-9, high * (1 + 1e-12), 2**63, -2**63 - 1, 10**30, 1e400]
        spoilers = [x for x in past if (low is not None and x < low) or (high is not None and x > high) or x == -1e-31]
        if annotation is int:
            spoilers += [float(int(low)), 1.5, "1", True]
        return st.one_of(st.sampled_from(spoilers), junk())
    if annotation is str:
        longest = bounds.get("MaxLen", 64)
        if valid:
            return st.one_of(st.text(max_size=longest), st.sampled_from(["", "希沃白板", "a" * longest]))
        return st.one_of(st.sampled_from(["a" * (longest + 1), "é" * (longest + 1), "a\x00b"]), junk())
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return st.sampled_from([e.value for e in annotation]) if valid else st.one_of(st.just("other"), junk())
    raise AssertionError(f"no values for {annotation}: teach this test the contract's new type")


def objects(model: type[BaseModel], spoiled: bool = False) -> st.SearchStrategy:
    """JSON objects for a model: every field allowed, then (spoiled) one or two fields given a value
    it does not allow, an optional field dropped, a required one dropped, unknown fields added."""
    fields = model.model_fields
    good = st.fixed_dictionaries({name: values(f.annotation, f, valid=True) for name, f in fields.items()})

    @st.composite
    def build(draw):
        body = draw(good)
        if spoiled:
            for name in draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=2, unique=True)):
                body[name] = draw(values(fields[name].annotation, fields[name], valid=False))
        if draw(st.integers(0, 4)) == 0:
            body.pop(draw(st.sampled_from(sorted(body))), None)
        return body | draw(st.dictionaries(st.sampled_from(["extra", "note"]), junk(), max_size=1))

    return build()


def serialised(bodies: st.SearchStrategy) -> st.SearchStrategy:
    return st.builds(lambda body, ascii_only, spaced: json.dumps(
        body, ensure_ascii=ascii_only, separators=(", ", ": ") if spaced else (",", ":")).encode(),
        bodies, st.booleans(), st.booleans())


readings = st.tuples(st.sampled_from(sorted(MODELS)), st.booleans()).flatmap(
    lambda kind_spoiled: objects(MODELS[kind_spoiled[0]], spoiled=kind_spoiled[1]))


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(serialised(readings))
def test_the_fast_path_decides_as_the_models_do(payload):
    assert_same(payload)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(st.one_of(st.binary(max_size=300), serialised(st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8))))
def test_anything_else_is_refused_as_the_models_refuse_it(payload):
    assert_same(payload)


@pytest.mark.parametrize("payload", [
    b'{"v":1,"ts":"2026-11-24T02:00:00Z","seq":1,"kind":"gateway","kind":"board","power_on":true,'
    b'"screen_on":true,"active_use_s":1}',  # a key twice: the last one counts
    b'{"v":1,"ts":"2026-11-24T02:00:00Z","seq":1,"seq":2,"kind":"board","power_on":true,"screen_on":true,'
    b'"active_use_s":1}',
    b'{"v":1,"ts":"2026-11-24T02:00:00Z","seq":1,"kind":"board","power_on":true,"screen_on":true,'
    b'"active_use_s":1,"note":"\xff\xfe"}',  # not UTF-8, in a field the models ignore
    b'{"v":1,"ts":"2026-11-24T02:00:00Z","seq":1,"kind":"board","power_on":true,"screen_on":true,'
    b'"active_use_s":1,"note":"\xed\xa0\x80"}',  # a surrogate written as UTF-8 bytes
    b'{"v":1,"ts":"2026-11-24T02:00:00Z","seq":1,"kind":"board","power_on":true,"screen_on":true,'
    b'"active_use_s":1,"note":' + b"[" * 3000 + b"]" * 3000 + b"}",  # deeper than either parser goes
    b'{"v":1,"ts":"2026-11-24T02:00:00Z","seq":1,"kind":"board","power_on":true,"screen_on":true,'
    b'"active_use_s":1,"note":NaN}',
    b'{"v":1,"ts":"2026-11-24T02:00:00Z","seq":1,"kind":"board","power_on":true,"screen_on":true,'
    b'"active_use_s":1,"note":1e999}',
    b'{"v":1,"ts":"2026-11-24T02:00:00Z","seq":1,"kind":"board","power_on":true,"screen_on":true,'
    b'"active_use_s":1,"foreground_app":"a\\u0000b"}',
    b'{"v":1,"ts":"2026-11-24T02:00:00Z","seq":1,"kind":"board","power_on":true,"screen_on":true,'
    b'"active_use_s":1,"error_codes":["\\ud800"]}',
    b'{"v":1,"ts":"2026-11-24T02:00:00Z","seq":1,"kind":"recorder","recording":true,"streaming":false,'
    b'"dropped_frames":3,"cameras":[{"role":"teacher","online":true,"brightness":7,"x":1},{"role":"students",'
    b'"online":false}],"bitrate_kbps":-1e-31}',
    b'{"v":1,"ts":"2026-11-24T02:00:00Z","seq":1,"kind":"gateway","uplink_mbps":-1e-31,"rx_mbps":-1e-31,'
    b'"tx_mbps":0,"aps_total":1,"aps_online":1,"wifi_clients":1}',
    b'{"v":1,"ts":"2026-11-24T02:00:00Z","seq":1,"kind":"gateway","uplink_mbps":0.01,"rx_mbps":1e-31,'
    b'"tx_mbps":1000000,"aps_total":1000000,"aps_online":0,"wifi_clients":0}',
    *(b'{"v":1,"ts":"%s","seq":1,"kind":"board","power_on":true,"screen_on":true,"active_use_s":1}' % ts
      for ts in (b"2026-W48-2T00:00:00Z", b"20261124T020000Z", b"2026-11-24T02Z", b"2026-11-24T02:00:00.1234567Z")),
    b'\xef\xbb\xbf{"v":1}', b" ", b"[]", b'{"v":1,"ts":"2026-11-24T02:00:00Z","seq":1,"kind":"board"} x',
    b'{"kind":"board"}'.ljust(MAX_PAYLOAD_BYTES),
])
def test_the_cases_where_parsers_differ_are_left_to_the_models(payload):
    assert_same(payload)


def test_ordinary_readings_take_the_fast_path():
    """Not a tautology: the fast path answers these itself, without the models."""
    stamp = NOW.isoformat()
    for body in ({"v": 1, "ts": stamp, "seq": 1, "kind": "board", "power_on": True, "screen_on": False,
                  "active_use_s": 5, "cpu_temp_c": 50, "error_codes": ["E1"], "foreground_app": "希沃白板"},
                 {"v": 1, "ts": "2026-11-24T10:00:00.25+08:00", "seq": 2, "kind": "recorder", "recording": True,
                  "streaming": True, "dropped_frames": 0, "cameras": [{"role": "teacher", "online": True}]},
                 {"v": 1, "ts": "2026-11-24T02:00:00Z", "seq": 3, "kind": "gateway", "uplink_mbps": 1000,
                  "rx_mbps": 5.5, "tx_mbps": 1, "aps_total": 3, "aps_online": 2, "wifi_clients": 40}):
        payload = json.dumps(body, ensure_ascii=False).encode()
        fast = telemetry_decode._fast_telemetry(TOPIC, "DEV-01", payload, NOW, POLICY)
        assert isinstance(fast, Record), body
        assert_same(payload)
    late = json.dumps({"v": 1, "ts": "2026-11-01T00:00:00Z", "seq": 4, "kind": "board", "power_on": True,
                       "screen_on": True, "active_use_s": 1}).encode()
    assert isinstance(telemetry_decode._fast_telemetry(TOPIC, "DEV-01", late, NOW, POLICY), Rejected)
    assert_same(late)


def test_the_fast_structs_have_the_models_fields():
    """A field added to the contract must reach the fast path (or this fails)."""
    for model, struct in FAST_STRUCTS.items():
        tag = {"kind"} if model is not Camera else set()
        assert set(model.model_fields) - tag == set(struct.__struct_fields__), model.__name__
