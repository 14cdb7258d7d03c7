"""Shapes of the patrol routes: what clients send, and the patrol package's rows as they are returned."""

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
    PlainSerializer,
    Strict,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from api.inputs import DbDateTime, DbText, JsonObject
from core.scope import Level

Severity = Literal["critical", "major", "warning", "info"]
AlertState = Literal["pending", "firing", "acknowledged", "resolved"]
OrderStatus = Literal["open", "in_progress", "done", "accepted", "rejected", "cancelled"]
# A time as these routes have always sent it: ISO 8601 with its offset (+00:00 rather than Z).
Timestamp = Annotated[datetime, PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
                      WithJsonSchema({"type": "string", "format": "date-time"})]
Json = dict[str, Any]


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


class Created(BaseModel):
    """The id of what was created."""

    id: int


class AlertSummary(BaseModel):
    """Open alerts of a scope by severity (inhibited ones counted apart)."""

    open: int
    by_severity: dict[str, int]
    inhibited: int
    as_of: datetime


class Alert(BaseModel):
    """An alert: its lifecycle, its root cause, its silence, its team and its notices."""

    id: int
    rule_id: str
    device_id: str
    school_code: str
    state: AlertState
    severity: Severity
    summary: str
    detail: Json
    first_seen: Timestamp
    last_seen: Timestamp
    count: int
    fired_at: Timestamp | None
    acked_at: Timestamp | None
    acked_by: str | None
    resolved_at: Timestamp | None
    resolution: str | None
    inhibited_by: int | None = Field(description="the alert whose root cause suppresses this one")
    silence_id: int | None
    team_id: int | None
    escalation_level: int
    escalated_at: Timestamp | None
    notified_at: Timestamp | None
    reminded_at: Timestamp | None
    resolved_notified_at: Timestamp | None


class AlertRow(Alert):
    """An alert in a list, with its rule, school, device and team."""

    rule_title: str
    page: bool
    school_name: str
    device_kind: Literal["board", "recorder", "gateway"]
    room: str
    team_name: str | None
    grouped: int = Field(0, description="open alerts grouped under this one's root cause (GET /alerts/{id}/grouped)")


class SuppressedAlert(BaseModel):
    """An alert suppressed behind another's root cause."""

    id: int
    rule_id: str
    device_id: str
    state: AlertState
    summary: str


class Notice(BaseModel):
    """A message sent (or attempted) about an alert."""

    sent_at: Timestamp
    kind: Literal["firing", "resolved", "reminder", "escalation"]
    channel: Literal["mqtt", "webhook", "email"]
    target: str
    status: Literal["sent", "failed"]
    error: str | None


class AlertDetail(Alert):
    """An alert with its rule, the alerts it suppresses (its incident) and its notifications."""

    rule_title: str
    suppressed: list[SuppressedAlert]
    notifications: list[Notice]
    school_name: str | None = None
    room: str | None = None
    work_order_id: int | None = Field(None, description="the work order standing for the alert (open, in progress, "
                                                        "done or rejected), if there is one")


class SchoolAlerts(BaseModel):
    """A school's open, uninhibited alerts by severity: one incident per school."""

    school_code: str
    school_name: str
    alerts: int
    critical: int
    major: int
    warning: int
    inhibited: int = Field(description="open alerts suppressed behind a root cause")
    since: Timestamp


class WorkOrder(BaseModel):
    """A work order (工单) from opening to acceptance."""

    id: int
    alert_id: int | None
    school_code: str
    device_id: str | None
    title: str
    status: OrderStatus
    assignee: str | None
    created_by: str
    created_at: Timestamp
    deadline: Timestamp | None
    started_at: Timestamp | None
    done_at: Timestamp | None
    resolution: str | None
    accepted_at: Timestamp | None
    accepted_by: str | None
    acceptance_note: str | None
    updated_at: Timestamp


class WorkOrderRow(WorkOrder):
    """A work order in a list, with its school."""

    school_name: str
    overdue: bool


# Blanks trimmed first, then 1–2,000 characters that a text column stores (DbText's own checks after).
NoteText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), *DbText.__metadata__]


class NoteIn(BaseModel):
    """A note on a work order: what was found, what was done (1–2,000 characters, blanks trimmed)."""

    text: NoteText = Field(examples=["更换了网关电源适配器, 已恢复上线"])


class Note(BaseModel):
    """A note on a work order."""

    id: int
    author: str
    created_at: Timestamp
    text: str


class Photo(BaseModel):
    """A photo of a repair, as stored: a JPEG of at most 1280 pixels a side, fetched at `url`."""

    id: int
    author: str
    created_at: Timestamp
    width: int
    height: int
    bytes: int
    url: str = Field(examples=["/api/v1/work-orders/12/photos/3"])


class WorkOrderDetail(WorkOrder):
    """A work order with where it is, its alert's severity and state, and its notes and photos."""

    school_name: str
    room: str | None
    severity: Severity | None = Field(description="its alert's (none for an order without an alert)")
    alert_state: AlertState | None
    rule_title: str | None
    notes: list[Note]
    photos: list[Photo]


class QueueItem(BaseModel):
    """One piece of work in a team's queue: an open work order, or an open alert nobody has an order for."""

    kind: Literal["order", "alert"]
    order_id: int | None
    alert_id: int | None
    severity: Severity | None = Field(description="the alert's (none for an order without an alert)")
    alert_state: AlertState | None
    order_status: OrderStatus | None
    title: str
    rule_title: str | None
    school_code: str
    school_name: str
    device_id: str | None
    room: str | None
    assignee: str | None
    since: Timestamp = Field(description="when its alert fired (an order without an alert: when it was opened)")
    deadline: Timestamp | None
    overdue: bool
    notes: int
    photos: int


class ResponseTimes(BaseModel):
    """Alerts fired in a scope or sub-scope, and the mean seconds to acknowledge and to resolve them."""

    scope_code: str
    fired: int
    acknowledged: int
    resolved: int
    mtta_s: float | None
    mttr_s: float | None


class RuleOverride(BaseModel):
    """A rule's params for one scope."""

    rule_id: str
    scope_level: Level
    scope_code: str
    params: Json


class Rule(BaseModel):
    """A patrol rule with its defaults."""

    id: str
    title: str
    kind: Literal["board", "recorder", "gateway", "device", "lesson"]
    severity: Severity
    params: Json
    for_s: int
    every_s: int
    active_in: Literal["lessons", "school_hours", "always"]
    page: bool
    enabled: bool
    last_evaluated_at: Timestamp | None


class RuleWithOverrides(Rule):
    """A patrol rule with its defaults and its per-scope overrides."""

    overrides: list[RuleOverride]


class Round(BaseModel):
    """A patrol round (巡检) of a scope: what was checked, and the summary of what was found."""

    id: int
    scope_level: Level
    scope_code: str
    day: date
    trigger: Literal["daily", "on_demand"]
    started_at: Timestamp
    checked: Json
    summary: Json


class Finding(BaseModel):
    """An alert a round found, and how it changed since the scope's previous round."""

    round_id: int
    rule_id: str
    device_id: str
    school_code: str
    severity: str
    state: str
    summary: str
    first_seen: Timestamp
    change: Literal["new", "ongoing", "cleared"]
    alert_id: int | None
    school_name: str


class RoundReport(Round):
    """A round with its findings, worst first (巡检报告)."""

    findings: list[Finding]


class Classroom(BaseModel):
    """A classroom in session now (巡课): a main recorder streaming or a receiving board."""

    role: Literal["main", "receiving"]
    device_id: str
    school_code: str
    school_name: str
    room: str
    lesson_id: str | None
    subject: str | None
    cameras: Any = Field(description="the recorder's last camera snapshot stats (main classrooms)")
    last_seen: Timestamp | None
