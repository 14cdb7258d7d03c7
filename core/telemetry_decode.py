"""Turn one raw device message (MQTT, or a reading pushed over HTTP) into a row for its table, or a dead letter with a reason.

Payloads are validated strictly, as the JSON Schemas say: "true" is not a boolean, a
number is not a time.

Pure functions with no I/O, so they can be fuzzed and tested without a broker.
"""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError

from core import contract
from core.contract import (
    BoardTelemetry,
    Channel,
    CommandAck,
    DeviceEvent,
    DeviceStatus,
    GatewayTelemetry,
    RecorderTelemetry,
    StatusReason,
)

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


@dataclass(frozen=True)
class Record:
    """A valid message: the row for its table and what it says about the device's state."""

    device_id: str
    table: str
    row: tuple
    time: datetime
    seq: int | None
    state: dict  # what a status message says about the device (telemetry state is taken in SQL)
    topic: str
    payload: bytes  # kept so a record refused later (unknown device) is dead-lettered whole


@dataclass(frozen=True)
class Rejected:
    """A message that failed validation, kept whole for the dead-letter table."""

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
