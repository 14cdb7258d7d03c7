"""Input shapes of the patrol routes (outputs are the patrol package's rows)."""

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field

Severity = Literal["critical", "major", "warning", "info"]
AlertState = Literal["pending", "firing", "acknowledged", "resolved"]
OrderStatus = Literal["open", "in_progress", "done", "accepted", "rejected", "cancelled"]


class SilenceIn(BaseModel):
    """Mute matching alerts until a time, for a reason."""

    ends_at: AwareDatetime = Field(examples=["2026-11-25T18:00:00+08:00"])
    reason: str = Field(min_length=2, max_length=500, examples=["更换交换机, 预计 2 小时"])
    starts_at: AwareDatetime | None = None
    rule_id: str | None = Field(default=None, max_length=64)
    device_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{3,64}$")


class MaintenanceIn(BaseModel):
    """A maintenance window over the scope: nothing inside it is a fault."""

    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: str = Field(min_length=2, max_length=500, examples=["暑期线路改造"])


class WorkOrderIn(BaseModel):
    """Open a work order from an alert."""

    assignee: str | None = Field(default=None, max_length=64, examples=["ops-zengdu"])
    deadline: AwareDatetime | None = None
    title: str | None = Field(default=None, max_length=200)


class WorkOrderUpdate(BaseModel):
    """Move a work order on: resolution when done, acceptance note when accepted or rejected."""

    status: OrderStatus
    note: str | None = Field(default=None, max_length=2000)
    assignee: str | None = Field(default=None, max_length=64)


class RuleUpdate(BaseModel):
    """Change a rule's defaults; params are merged key by key."""

    params: dict[str, Any] | None = None
    severity: Severity | None = None
    for_s: int | None = Field(default=None, ge=0, le=7 * 86400)
    enabled: bool | None = None


class AlertSummary(BaseModel):
    """Open alerts of a scope by severity (inhibited ones counted apart)."""

    open: int
    by_severity: dict[str, int]
    inhibited: int
    as_of: datetime
