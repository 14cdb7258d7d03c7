"""Turn one raw device message (MQTT, or a reading pushed over HTTP) into a row for its table, or a dead letter with a reason.

Payloads are validated strictly, as the JSON Schemas say: "true" is not a boolean, a
number is not a time. The contract's pydantic models decide; telemetry, nearly all of the
traffic, first tries a fast path (msgspec structs bounded by the same models' fields) that
accepts only what the models accept, with the same values, and hands anything it is not
sure of to the models (tests/ingest/test_fast_decode.py compares the two).

Pure functions with no I/O, so they can be fuzzed and tested without a broker.
"""

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Literal, get_args

import annotated_types
import msgspec
from pydantic import BaseModel, ValidationError

from core import contract
from core.contract import (
    BoardTelemetry,
    Camera,
    CameraRole,
    Channel,
    CommandAck,
    DeviceEvent,
    DeviceStatus,
    GatewayTelemetry,
    RecorderTelemetry,
    StatusReason,
)
from core.storable import check_text

# Column order of every table the ingest writes; rows are tuples in this order.
# received_at is left to the database (its transaction time): the rollups follow it.
COLUMNS: dict[str, tuple[str, ...]] = {
    "board_telemetry": (
        "device_id", "time", "seq", "power_on", "screen_on", "active_use_s",
        "cpu_temp_c", "cpu_load", "mem_load", "disk_used_pct", "foreground_app", "os_version",
        "error_codes", "clock_skewed",
    ),
    "recorder_telemetry": (
        "device_id", "time", "seq", "recording", "streaming", "bitrate_kbps",
        "dropped_frames", "cameras_total", "cameras_online", "cameras", "storage_free_gb",
        "lesson_id", "clock_skewed",
    ),
    "gateway_telemetry": (
        "device_id", "time", "seq", "uplink_mbps", "rx_mbps", "tx_mbps",
        "latency_ms", "loss_pct", "aps_total", "aps_online", "wifi_clients", "clock_skewed",
    ),
    "device_event": (
        "device_id", "time", "seq", "type", "lesson_id", "lesson_role", "detail",
        "clock_skewed",
    ),
    "device_status_change": ("device_id", "time", "online", "reason"),
}
ACK_TABLE = "device_command"  # acknowledgements update commands instead of adding rows


@dataclass(frozen=True)
class ClockPolicy:
    """How far a device clock may be from the server's before a reading is flagged or refused."""

    skew_flag: timedelta
    max_future: timedelta
    max_past: timedelta


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ cost more than decoding a reading
class Record:
    """A valid message: the row for its table and what it says about the device's state (never changed)."""

    device_id: str
    table: str
    row: tuple
    time: datetime
    seq: int | None
    state: dict  # what a status message says about the device (telemetry state is taken in SQL)
    topic: str
    payload: bytes  # kept so a record refused later (unknown device) is dead-lettered whole


@dataclass(slots=True)
class Rejected:
    """A message that failed validation, kept whole for the dead-letter table (never changed)."""

    topic: str
    payload: bytes
    reason: str
    device_id: str | None


def _reason(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "payload"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"invalid {where}: {first['msg']}{more}"[:500]


def _check_clock(ts: datetime, now: datetime, policy: ClockPolicy) -> bool | str:
    """False if fine, True if flagged as skewed, or a reason string if refused."""
    if ts - now > policy.max_future:
        return f"clock: device time {ts.isoformat()} is too far in the future"
    if now - ts > policy.max_past:
        return f"clock: device time {ts.isoformat()} is too far in the past"
    return ts - now > policy.skew_flag


def _telemetry_row(device_id: str, m, skewed: bool) -> tuple[str, tuple]:
    head = (device_id, m.ts, m.seq)
    if isinstance(m, BoardTelemetry):
        row = head + (
            m.power_on, m.screen_on, m.active_use_s, m.cpu_temp_c, m.cpu_load, m.mem_load,
            m.disk_used_pct, m.foreground_app, m.os_version, list(m.error_codes), skewed,
        )
        return "board_telemetry", row
    if isinstance(m, RecorderTelemetry):
        cams = [c.model_dump(mode="json") for c in m.cameras]
        row = head + (
            m.recording, m.streaming, m.bitrate_kbps, m.dropped_frames, len(m.cameras),
            sum(c.online for c in m.cameras), json.dumps(cams), m.storage_free_gb, m.lesson_id,
            skewed,
        )
        return "recorder_telemetry", row
    assert isinstance(m, GatewayTelemetry)
    row = head + (
        m.uplink_mbps, m.rx_mbps, m.tx_mbps, m.latency_ms, m.loss_pct, m.aps_total, m.aps_online,
        m.wifi_clients, skewed,
    )
    return "gateway_telemetry", row


def decode(topic: str, payload: bytes, now: datetime, policy: ClockPolicy) -> Record | Rejected:
    """Validate one message against the device contract."""
    device_id = _telemetry_device(topic)
    if device_id is not None and len(payload) <= contract.MAX_PAYLOAD_BYTES:
        fast = _fast_telemetry(topic, device_id, payload, now, policy)
        if fast is not None:
            return fast
    try:
        device_id, channel = contract.parse_topic(topic)
    except ValueError as exc:
        return Rejected(topic, payload, f"invalid topic: {exc}", None)
    if channel is Channel.REFUSED:
        return _decode_refusal(topic, device_id, payload)
    if len(payload) > contract.MAX_PAYLOAD_BYTES:
        return Rejected(topic, payload, f"payload too large: {len(payload)} bytes exceeds "
                        f"{contract.MAX_PAYLOAD_BYTES}", device_id)
    try:
        if channel is Channel.TELEMETRY:
            return _decode_telemetry(topic, device_id, payload, now, policy)
        if channel is Channel.EVENT:
            return _decode_event(topic, device_id, payload, now, policy)
        if channel is Channel.STATUS:
            return _decode_status(topic, device_id, payload, now, policy)
        if channel is Channel.ACK:
            return _decode_ack(topic, device_id, payload, now, policy)
    except ValidationError as exc:
        return Rejected(topic, payload, _reason(exc), device_id)
    return Rejected(topic, payload, f"invalid topic: channel {channel.value} is not ingested", device_id)


def _decode_refusal(topic, device_id, payload) -> Rejected:
    """The broker refused a publish of the device's: a dead letter under the topic it was for."""
    try:
        m = contract.BrokerRefusal.model_validate_json(payload, strict=True)
    except ValidationError as exc:
        return Rejected(topic, payload, _reason(exc), device_id)
    return Rejected(m.topic, payload, f"payload too large: {m.size} bytes exceeds {m.limit} "
                    "(refused by the broker)", device_id)


def _decode_telemetry(topic, device_id, payload, now, policy) -> Record | Rejected:
    m = contract.TELEMETRY.validate_json(payload, strict=True)
    clock = _check_clock(m.ts, now, policy)
    if isinstance(clock, str):
        return Rejected(topic, payload, clock, device_id)
    table, row = _telemetry_row(device_id, m, clock)
    return Record(device_id, table, row, m.ts, m.seq, {}, topic, payload)


def _decode_event(topic, device_id, payload, now, policy) -> Record | Rejected:
    m = DeviceEvent.model_validate_json(payload, strict=True)
    clock = _check_clock(m.ts, now, policy)
    if isinstance(clock, str):
        return Rejected(topic, payload, clock, device_id)
    row = (device_id, m.ts, m.seq, m.type.value, m.lesson_id, m.lesson_role,
           json.dumps(m.detail), clock)
    return Record(device_id, "device_event", row, m.ts, m.seq, {}, topic, payload)


def _decode_status(topic, device_id, payload, now, policy) -> Record | Rejected:
    m = DeviceStatus.model_validate_json(payload, strict=True)
    clock = _check_clock(m.ts, now, policy)
    if isinstance(clock, str) and m.reason is not StatusReason.WILL:
        return Rejected(topic, payload, clock, device_id)
    # A last will carries the time the device connected; the loss happened now.
    at = now if m.reason is StatusReason.WILL else min(m.ts, now)
    row = (device_id, at, m.online, m.reason.value)
    return Record(device_id, "device_status_change", row, at, None, {"online": m.online}, topic, payload)


def _decode_ack(topic, device_id, payload, now, policy) -> Record | Rejected:
    m = CommandAck.model_validate_json(payload, strict=True)
    clock = _check_clock(m.ts, now, policy)
    if isinstance(clock, str):
        return Rejected(topic, payload, clock, device_id)
    at = min(m.ts, now)
    row = (m.id, device_id, at, m.result.value, m.message)
    return Record(device_id, ACK_TABLE, row, at, None, {}, topic, payload)


# The fast path for telemetry. Structs mirror the contract's models field by field, their bounds
# read from the models; the after-validators (a real column's tiny magnitudes, storable text)
# are applied to the decoded values as the models apply them. Whatever the fast path cannot
# decode exactly as the models would (escapes, text not UTF-8, another way of writing a time,
# any refusal) returns None and the models decide, so a refusal's reason is always theirs.

def _bounds(model: type[BaseModel], name: str) -> msgspec.Meta:
    """A model field's bounds (ge, le, max_length) as a msgspec constraint."""
    return _meta(model.model_fields[name].metadata)


def _item_bounds(model: type[BaseModel], name: str) -> msgspec.Meta:
    """The bounds of a list field's items (`list[Annotated[str, ..., Field(max_length=…)]]`)."""
    item = get_args(model.model_fields[name].annotation)[0]
    return _meta([m for extra in get_args(item)[1:] for m in getattr(extra, "metadata", [])])


def _meta(metadata: list) -> msgspec.Meta:
    kinds = {annotated_types.Ge: "ge", annotated_types.Le: "le", annotated_types.MaxLen: "max_length"}
    found = {kinds[type(m)]: getattr(m, kinds[type(m)]) for m in metadata if type(m) in kinds}
    return msgspec.Meta(**found)


class _Camera(msgspec.Struct):
    role: CameraRole
    online: bool
    brightness: Annotated[float, _bounds(Camera, "brightness")] | None = None
    frozen_frames: Annotated[int, _bounds(Camera, "frozen_frames")] = 0


class _Board(msgspec.Struct, tag_field="kind", tag="board"):
    v: Literal[1]
    ts: str
    seq: Annotated[int, _bounds(BoardTelemetry, "seq")]
    power_on: bool
    screen_on: bool
    active_use_s: Annotated[int, _bounds(BoardTelemetry, "active_use_s")]
    cpu_temp_c: Annotated[float, _bounds(BoardTelemetry, "cpu_temp_c")] | None = None
    cpu_load: Annotated[float, _bounds(BoardTelemetry, "cpu_load")] | None = None
    mem_load: Annotated[float, _bounds(BoardTelemetry, "mem_load")] | None = None
    disk_used_pct: Annotated[float, _bounds(BoardTelemetry, "disk_used_pct")] | None = None
    foreground_app: Annotated[str, _bounds(BoardTelemetry, "foreground_app")] | None = None
    os_version: Annotated[str, _bounds(BoardTelemetry, "os_version")] | None = None
    error_codes: Annotated[list[Annotated[str, _item_bounds(BoardTelemetry, "error_codes")]],
                           _bounds(BoardTelemetry, "error_codes")] = []


class _Recorder(msgspec.Struct, tag_field="kind", tag="recorder"):
    v: Literal[1]
    ts: str
    seq: Annotated[int, _bounds(RecorderTelemetry, "seq")]
    recording: bool
    streaming: bool
    dropped_frames: Annotated[int, _bounds(RecorderTelemetry, "dropped_frames")]
    cameras: Annotated[list[_Camera], _bounds(RecorderTelemetry, "cameras")]
    bitrate_kbps: Annotated[float, _bounds(RecorderTelemetry, "bitrate_kbps")] | None = None
    storage_free_gb: Annotated[float, _bounds(RecorderTelemetry, "storage_free_gb")] | None = None
    lesson_id: Annotated[str, _bounds(RecorderTelemetry, "lesson_id")] | None = None


class _Gateway(msgspec.Struct, tag_field="kind", tag="gateway"):
    v: Literal[1]
    ts: str
    seq: Annotated[int, _bounds(GatewayTelemetry, "seq")]
    uplink_mbps: Annotated[float, _bounds(GatewayTelemetry, "uplink_mbps")]
    rx_mbps: Annotated[float, _bounds(GatewayTelemetry, "rx_mbps")]
    tx_mbps: Annotated[float, _bounds(GatewayTelemetry, "tx_mbps")]
    aps_total: Annotated[int, _bounds(GatewayTelemetry, "aps_total")]
    aps_online: Annotated[int, _bounds(GatewayTelemetry, "aps_online")]
    wifi_clients: Annotated[int, _bounds(GatewayTelemetry, "wifi_clients")]
    latency_ms: Annotated[float, _bounds(GatewayTelemetry, "latency_ms")] | None = None
    loss_pct: Annotated[float, _bounds(GatewayTelemetry, "loss_pct")] | None = None


FAST_STRUCTS = {BoardTelemetry: _Board, RecorderTelemetry: _Recorder, GatewayTelemetry: _Gateway, Camera: _Camera}
_TELEMETRY = msgspec.json.Decoder(_Board | _Recorder | _Gateway)
# The one way devices write a time that the fast path reads itself (RFC 3339 with T, Z or ±hh:mm,
# up to microseconds); any other that the contract accepts is read by the models.
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})")
_PREFIX, _SUFFIX = f"{contract.TOPIC_ROOT}/", f"/{Channel.TELEMETRY.value}"
_DEVICE_ID = re.compile(contract.DEVICE_ID_PATTERN)


def _telemetry_device(topic: str) -> str | None:
    """The device id of a telemetry topic (as contract.parse_topic reads it), else None."""
    if topic.startswith(_PREFIX) and topic.endswith(_SUFFIX):
        device_id = topic[len(_PREFIX):-len(_SUFFIX)]
        if _DEVICE_ID.fullmatch(device_id):  # no "/" either: the pattern has none
            return device_id
    return None


def _real(value: float | None) -> float | None:
    return None if value is None else contract._real(value)


def _text(value: str | None) -> str | None:
    return None if value is None else check_text(value)


def _fast_telemetry(topic: str, device_id: str, payload: bytes, now: datetime,
                    policy: ClockPolicy) -> Record | Rejected | None:
    """The reading as the contract's models would decode it, or None when they must decide."""
    if b"\\" in payload:
        return None  # escapes: a key written another way, a surrogate, a NUL
    try:
        if not payload.isascii():
            payload.decode()  # the models refuse text that is not UTF-8, even in a field they ignore
        m = _TELEMETRY.decode(payload)
        if not _TIME.fullmatch(m.ts):
            return None
        ts = datetime.fromisoformat(m.ts)
        row_of = _ROWS[type(m)]
        clock = _check_clock(ts, now, policy)
        if isinstance(clock, str):
            return Rejected(topic, payload, clock, device_id)
        table, row = row_of(device_id, ts, m, clock)
    except Exception:  # any doubt at all: the models decide, and say why
        return None
    return Record(device_id, table, row, ts, m.seq, {}, topic, payload)


def _board_row(device_id: str, ts: datetime, m: _Board, skewed: bool) -> tuple[str, tuple]:
    row = (device_id, ts, m.seq, m.power_on, m.screen_on, m.active_use_s, _real(m.cpu_temp_c),
           _real(m.cpu_load), _real(m.mem_load), _real(m.disk_used_pct), _text(m.foreground_app),
           _text(m.os_version), list(map(check_text, m.error_codes)) if m.error_codes else [], skewed)
    return "board_telemetry", row


def _recorder_row(device_id: str, ts: datetime, m: _Recorder, skewed: bool) -> tuple[str, tuple]:
    cams = [{"role": c.role.value, "online": c.online, "brightness": c.brightness,
             "frozen_frames": c.frozen_frames} for c in m.cameras]
    row = (device_id, ts, m.seq, m.recording, m.streaming, _real(m.bitrate_kbps), m.dropped_frames,
           len(m.cameras), sum(c.online for c in m.cameras), json.dumps(cams), _real(m.storage_free_gb),
           _text(m.lesson_id), skewed)
    return "recorder_telemetry", row


def _gateway_row(device_id: str, ts: datetime, m: _Gateway, skewed: bool) -> tuple[str, tuple]:
    row = (device_id, ts, m.seq, _real(m.uplink_mbps), _real(m.rx_mbps), _real(m.tx_mbps), _real(m.latency_ms),
           _real(m.loss_pct), m.aps_total, m.aps_online, m.wifi_clients, skewed)
    return "gateway_telemetry", row


_ROWS = {_Board: _board_row, _Recorder: _recorder_row, _Gateway: _gateway_row}
