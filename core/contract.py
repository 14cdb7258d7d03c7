"""The device contract: MQTT topic grammar, QoS, and versioned payload models.

Both the device simulator and the ingest import this module; `docs/mqtt-contract.md`
describes it for device vendors and the JSON Schemas are generated from these models.

Topics are keyed by device id, never by the school hierarchy:

    edu/dev/{device_id}/telemetry   periodic readings           device -> platform
    edu/dev/{device_id}/event       discrete events             device -> platform
    edu/dev/{device_id}/status      retained online/offline     device -> platform (last will)
    edu/dev/{device_id}/ack         command acknowledgements    device -> platform
    edu/dev/{device_id}/cmd         commands                    platform -> device
    edu/dev/{device_id}/snapshot    camera stills in lessons    device -> platform (the snapshot intake)
"""

import base64
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from core.storable import check_json_object, check_text

TOPIC_ROOT = "edu/dev"
QOS = 1  # at-least-once end to end; writes are idempotent on (device, seq, time)
CONTRACT_VERSION = 1
MAX_PAYLOAD_BYTES = 16 * 1024  # larger payloads are dead-lettered unread
# A camera still's payload (a JPEG of a few tens of KiB, base64 in JSON) has a bound of its own.
MAX_SNAPSHOT_PAYLOAD_BYTES = 128 * 1024
DEVICE_ID_PATTERN = r"^[A-Za-z0-9_-]{3,64}$"
_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)

# Bounds that every value must meet before it reaches a column: the column type's range
# and what the quantity can physically be. A value past them is dead-lettered with its
# field named; it never reaches the database write.
MAX_COUNTER = 2**53  # cumulative counters (bigint columns; exact in JSON's doubles too)
MAX_SECONDS_OF_USE = 100 * 365 * 86400  # a board's lifetime of active use
MAX_MBPS = 1_000_000.0  # 1 Tbit/s: above any school link (real columns hold up to 3.4e38)
MAX_COUNT = 1_000_000  # access points, clients (integer columns hold up to 2^31 - 1)


def _real(value: float) -> float:
    # A `real` column cannot hold magnitudes under ~1.2e-38 (it refuses them as out of range);
    # no reading means anything at that scale, so they are zero.
    return 0.0 if abs(value) < 1e-30 else value


# A number a `real` column stores (ranges are set per field).
Real = Annotated[float, AfterValidator(_real)]
# Text that a text column can store.
Text = Annotated[str, AfterValidator(check_text)]
# A free-form JSON object that a jsonb column can store.
JsonObject = Annotated[dict[str, Any], AfterValidator(check_json_object)]


class Channel(StrEnum):
    """The channels of one device."""

    TELEMETRY = "telemetry"
    EVENT = "event"
    STATUS = "status"
    ACK = "ack"
    COMMAND = "cmd"
    # Written by the broker alone: a notice that it refused one of the device's publishes.
    REFUSED = "refused"
    # Camera stills during lessons: read by the snapshot intake (patrol/snapshots.py), not the ingest.
    SNAPSHOT = "snapshot"


UPSTREAM = (Channel.TELEMETRY, Channel.EVENT, Channel.STATUS, Channel.ACK)  # what devices publish
INGESTED = (*UPSTREAM, Channel.REFUSED)  # what the ingest reads


def topic(device_id: str, channel: Channel) -> str:
    """The topic of one device's channel."""
    return f"{TOPIC_ROOT}/{device_id}/{channel.value}"


def subscription(channel: Channel, share_group: str | None = None) -> str:
    """The wildcard subscription to one channel of all devices, optionally shared."""
    filt = f"{TOPIC_ROOT}/+/{channel.value}"
    return f"$share/{share_group}/{filt}" if share_group else filt


def parse_topic(name: str) -> tuple[str, Channel]:
    """Split a device topic into (device_id, channel); ValueError if it is not one."""
    parts = name.split("/")
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT:
        raise ValueError(f"not a device topic: {name!r}")
    try:
        channel = Channel(parts[3])
    except ValueError:
        raise ValueError(f"unknown channel {parts[3]!r} in topic {name!r}") from None
    if not _DEVICE_ID.fullmatch(parts[2]):
        raise ValueError(f"device id {parts[2]!r} does not match {DEVICE_ID_PATTERN}")
    return parts[2], channel


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    v: Literal[1] = Field(description="contract version")


class _Sequenced(_Message):
    ts: AwareDatetime = Field(description="device time, ISO 8601 with offset")
    seq: int = Field(ge=0, le=2**62, description="per-device sequence number, never reused")


class DeviceKind(StrEnum):
    """The kinds of classroom device the platform knows."""

    BOARD = "board"
    RECORDER = "recorder"
    GATEWAY = "gateway"


class BoardTelemetry(_Sequenced):
    """A touch all-in-one board's periodic reading."""

    kind: Literal["board"]
    power_on: bool
    screen_on: bool
    active_use_s: int = Field(ge=0, le=MAX_SECONDS_OF_USE,
                              description="cumulative seconds of active use since install")
    cpu_temp_c: Real | None = Field(default=None, ge=-40, le=150)
    cpu_load: Real | None = Field(default=None, ge=0, le=1)
    mem_load: Real | None = Field(default=None, ge=0, le=1)
    disk_used_pct: Real | None = Field(default=None, ge=0, le=100)
    foreground_app: Text | None = Field(default=None, max_length=128)
    os_version: Text | None = Field(default=None, max_length=64)
    error_codes: list[Annotated[Text, Field(max_length=32)]] = Field(default_factory=list, max_length=32)


class CameraRole(StrEnum):
    """What a recording-classroom camera looks at."""

    TEACHER = "teacher"
    STUDENTS = "students"
    BLACKBOARD = "blackboard"
    PANORAMA = "panorama"


class Camera(BaseModel):
    """One camera of a recording classroom, with simple picture statistics."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    role: CameraRole
    online: bool
    brightness: float | None = Field(default=None, ge=0, le=255, description="mean luma of the last snapshot")
    frozen_frames: int = Field(default=0, ge=0, le=MAX_COUNTER, description="consecutive near-identical frames")


class RecorderTelemetry(_Sequenced):
    """A recording-classroom host's periodic reading."""

    kind: Literal["recorder"]
    recording: bool
    streaming: bool
    bitrate_kbps: Real | None = Field(default=None, ge=0, le=MAX_MBPS * 1000)
    dropped_frames: int = Field(ge=0, le=MAX_COUNTER, description="cumulative dropped frames since start")
    cameras: list[Camera] = Field(max_length=16)
    storage_free_gb: Real | None = Field(default=None, ge=0, le=1e9)
    lesson_id: Text | None = Field(default=None, max_length=64)


class GatewayTelemetry(_Sequenced):
    """A school network gateway's periodic reading."""

    kind: Literal["gateway"]
    uplink_mbps: Real = Field(ge=0.01, le=MAX_MBPS, description="contracted uplink capacity")
    rx_mbps: Real = Field(ge=0, le=MAX_MBPS)
    tx_mbps: Real = Field(ge=0, le=MAX_MBPS)
    latency_ms: Real | None = Field(default=None, ge=0, le=3_600_000)
    loss_pct: Real | None = Field(default=None, ge=0, le=100)
    aps_total: int = Field(ge=0, le=MAX_COUNT)
    aps_online: int = Field(ge=0, le=MAX_COUNT)
    wifi_clients: int = Field(ge=0, le=MAX_COUNT)


Telemetry = Annotated[BoardTelemetry | RecorderTelemetry | GatewayTelemetry, Field(discriminator="kind")]


class EventType(StrEnum):
    """Discrete things a device reports when they happen."""

    POWER_ON = "power_on"
    POWER_OFF = "power_off"
    RECORDING_START = "recording_start"
    RECORDING_STOP = "recording_stop"
    STREAM_START = "stream_start"
    STREAM_STOP = "stream_stop"
    LESSON_START = "lesson_start"
    LESSON_END = "lesson_end"
    CAMERA_LOST = "camera_lost"
    CAMERA_RESTORED = "camera_restored"
    ERROR = "error"


class DeviceEvent(_Sequenced):
    """A discrete event; lesson events name the lesson and the room's role in it."""

    type: EventType
    lesson_id: Text | None = Field(default=None, max_length=64)
    lesson_role: Literal["main", "receiving"] | None = None
    detail: JsonObject = Field(default_factory=dict)


class StatusReason(StrEnum):
    """Why a status message was published."""

    BIRTH = "birth"  # published on every connect
    WILL = "will"  # the broker published the last will: the connection was lost
    SHUTDOWN = "shutdown"  # the device went offline deliberately


class DeviceStatus(_Message):
    """The retained online/offline status; the offline one is also the last will."""

    ts: AwareDatetime
    online: bool
    reason: StatusReason


class CommandName(StrEnum):
    """Commands the platform can send to a device."""

    REBOOT = "reboot"
    POWER_SCHEDULE = "power_schedule"
    NOTICE = "notice"


class Command(_Message):
    """A command sent down to one device."""

    id: Text = Field(max_length=64)
    name: CommandName
    params: JsonObject = Field(default_factory=dict)
    issued_at: AwareDatetime
    expires_at: AwareDatetime


class CommandResult(StrEnum):
    """How a device answered a command."""

    OK = "ok"
    REJECTED = "rejected"
    FAILED = "failed"


class CommandAck(_Message):
    """A device's answer to a command."""

    id: Text = Field(max_length=64)
    ts: AwareDatetime
    result: CommandResult
    message: Text | None = Field(default=None, max_length=512)


class BrokerRefusal(BaseModel):
    """The broker's notice that it refused one of a device's publishes for its size (written by
    the broker's guard, deploy/mosquitto/guard.c, to the device's `refused` topic)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    topic: Text = Field(max_length=1024, description="the topic the device published to")
    size: int = Field(validation_alias="bytes", ge=0, description="the payload's size in bytes")
    limit: int = Field(ge=0, description="the largest payload the broker lets through")


# Base64 with its padding (RFC 4648 §4): whole groups of four, the last one padded.
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


class CameraSnapshot(_Sequenced):
    """A still of one camera during a lesson, about one a minute: a JPEG of a few tens of KiB,
    base64 in the payload, which is at most MAX_SNAPSHOT_PAYLOAD_BYTES."""

    camera: CameraRole
    lesson_id: Text | None = Field(default=None, max_length=64, description="the remote lesson being carried, if any")
    jpeg: str = Field(max_length=MAX_SNAPSHOT_PAYLOAD_BYTES, pattern=BASE64_PATTERN,
                      description="the JPEG still, base64 (RFC 4648, with padding)")

    def image(self) -> bytes:
        """The JPEG bytes."""
        return base64.b64decode(self.jpeg)


TELEMETRY = TypeAdapter(Telemetry)


def encode(message: BaseModel) -> bytes:
    """Serialise a payload model as compact JSON."""
    return message.model_dump_json(exclude_none=True).encode()


def birth(now: datetime) -> DeviceStatus:
    """The online status a device publishes (retained) on every connect."""
    return DeviceStatus(v=1, ts=now, online=True, reason=StatusReason.BIRTH)


def will(now: datetime) -> DeviceStatus:
    """The offline status a device registers as its last will before connecting."""
    return DeviceStatus(v=1, ts=now, online=False, reason=StatusReason.WILL)


def json_schemas() -> dict[str, dict]:
    """JSON Schema of every payload, by file name, generated from the models above."""
    schemas = {
        "telemetry.board": BoardTelemetry, "telemetry.recorder": RecorderTelemetry,
        "telemetry.gateway": GatewayTelemetry, "event": DeviceEvent, "status": DeviceStatus,
        "cmd": Command, "ack": CommandAck, "snapshot": CameraSnapshot,
    }
    return {f"{name}.schema.json": model.model_json_schema(mode="validation") for name, model in schemas.items()}
