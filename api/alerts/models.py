"""Input shapes of the patrol routes (outputs are the patrol package's rows)."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, Strict, model_validator

from api.inputs import DbDateTime, DbText, JsonObject

Severity = Literal["critical", "major", "warning", "info"]
AlertState = Literal["pending", "firing", "acknowledged", "resolved"]
OrderStatus = Literal["open", "in_progress", "done", "accepted", "rejected", "cancelled"]


class SilenceIn(BaseModel):
    """Mute matching alerts until a time, for a reason (ends after it starts; starts now if not given)."""

    ends_at: DbDateTime = Field(examples=["2026-11-25T18:00:00+08:00"])
    reason: DbText = Field(min_length=2, max_length=500, examples=["更换交换机, 预计 2 小时"])
    starts_at: DbDateTime | None = None
    rule_id: str | None = Field(default=None, pattern=r"^[a-z0-9_]{2,64}$", examples=["gateway_offline"],
                                description="a patrol rule's id (422 if there is no such rule)")
    device_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{3,64}$")

    @model_validator(mode="after")
    def _ends_after_start(self) -> "SilenceIn":
        if self.starts_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class MaintenanceIn(BaseModel):
    """A maintenance window over the scope: nothing inside it is a fault (ends after it starts)."""

    starts_at: DbDateTime
    ends_at: DbDateTime
    reason: DbText = Field(min_length=2, max_length=500, examples=["暑期线路改造"])

    @model_validator(mode="after")
    def _ends_after_start(self) -> "MaintenanceIn":
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class WorkOrderIn(BaseModel):
    """Open a work order from an alert."""

    assignee: DbText | None = Field(default=None, max_length=64, examples=["ops-zengdu"])
    deadline: DbDateTime | None = None
    title: DbText | None = Field(default=None, max_length=200)


class WorkOrderUpdate(BaseModel):
    """Move a work order on: resolution when done, acceptance note when accepted or rejected."""

    status: OrderStatus
    note: DbText | None = Field(default=None, max_length=2000)
    assignee: DbText | None = Field(default=None, max_length=64)


class RuleUpdate(BaseModel):
    """Change a rule's defaults; params are merged key by key."""

    params: JsonObject | None = None
    severity: Severity | None = None
    for_s: Annotated[int, Strict()] | None = Field(default=None, ge=0, le=7 * 86400)
    enabled: Annotated[bool, Strict()] | None = None


class AlertSummary(BaseModel):
    """Open alerts of a scope by severity (inhibited ones counted apart)."""

    open: int
    by_severity: dict[str, int]
    inhibited: int
    as_of: datetime
