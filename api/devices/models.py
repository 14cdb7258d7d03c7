"""Device shapes: list rows, detail, history points, commands."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, Strict

from api.inputs import JsonObject
from core.contract import CommandName

DeviceKind = Literal["board", "recorder", "gateway"]


class DeviceRow(BaseModel):
    """A device in a list, with its state now."""

    id: str
    kind: DeviceKind
    school_code: str
    school_name: str
    county_name: str
    room: str
    vendor: str
    model: str
    online: bool
    last_seen: datetime | None


class DevicePage(BaseModel):
    """One page of a filtered device list."""

    total: int
    page: int
    page_size: int
    items: list[DeviceRow]


class CounterAnomalyOut(BaseModel):
    """A reading whose cumulative counter reset or jumped, so it was not counted in full."""

    time: datetime
    counter: Literal["active_use_s", "dropped_frames"]
    kind: Literal["reset", "jump"]
    previous: int
    value: int
    elapsed_s: float
    counted: int


class DeviceDetail(DeviceRow):
    """A device with its last values."""

    status_time: datetime | None
    in_use: bool | None
    recording: bool | None
    streaming: bool | None
    last_values: dict[str, Any]
    installed_on: str | None = None
    counter_anomalies_30d: int = Field(0, description="readings in the last 30 days whose counter reset or jumped")
    counter_anomalies: list[CounterAnomalyOut] = Field(default_factory=list, description="the latest ten")


class DeviceEventOut(BaseModel):
    """A device event as stored."""

    time: datetime
    type: str
    lesson_id: str | None
    lesson_role: str | None
    detail: dict[str, Any]


class CommandIn(BaseModel):
    """A command to send."""

    name: CommandName = Field(examples=["reboot"])
    params: JsonObject = Field(default_factory=dict, examples=[{"text": "今晚 22:00 系统维护"}])
    ttl_s: Annotated[int, Strict()] = Field(default=3600, ge=10, le=7 * 86400, description="how long an offline device may still get it")


class ScopeCommandIn(CommandIn):
    """A command to every device of a kind in a scope."""

    kind: DeviceKind


class CommandOut(BaseModel):
    """A command and what became of it."""

    id: str
    device_id: str
    name: str
    params: dict[str, Any]
    batch_id: str | None
    issued_by: str
    issued_at: datetime
    expires_at: datetime
    status: Literal["pending", "ok", "rejected", "failed", "expired", "unsent"]
    result_message: str | None
    acked_at: datetime | None


class BatchOut(BaseModel):
    """A command sent to many devices."""

    batch_id: str
    devices: int
    published: int
