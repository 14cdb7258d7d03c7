"""Shapes of the three classrooms: timetable rows, sessions, figures, the live view."""

from datetime import date, datetime, time
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from api.inputs import DbDate, DbText
from api.metrics.models import Bands, OmitUnset, PeriodInfo
from api.scopes.models import Scope, ScopeRef

LessonKind = Literal["dedicated", "master", "elite"]
SessionStatus = Literal["scheduled", "held", "partial", "interrupted", "missed"]
DEVICE_ID = r"^[A-Za-z0-9_-]{3,64}$"


def _local(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("a time of day in the schools' time zone, without a UTC offset")
    return value


# A time of day on the schools' clock ("08:00", "14:30:00"): the database keeps no offset.
LocalTime = Annotated[time, AfterValidator(_local), WithJsonSchema({
    "type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
    "examples": ["08:00"], "description": "a time of day in the schools' time zone, without a UTC offset"})]


class Receiver(BaseModel):
    """A receiving classroom of a timetabled lesson; the class defaults to the device's room."""

    device_id: str = Field(pattern=DEVICE_ID)
    class_name: DbText | None = Field(default=None, max_length=64)


class TimetableRow(BaseModel):
    """One remote lesson of the timetable, as imported."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", examples=["L000123"])
    kind: LessonKind
    subject: DbText = Field(min_length=1, max_length=64, examples=["音乐"])
    main_device_id: str = Field(pattern=DEVICE_ID)
    community_code: DbText | None = Field(default=None, max_length=64)
    weekday: int = Field(ge=1, le=7, description="ISO weekday, 1 = Monday")
    starts_at: LocalTime
    ends_at: LocalTime
    valid_from: DbDate
    valid_until: DbDate
    receivers: list[Receiver] = Field(min_length=1, max_length=200,
                                      description="device ids; in files `id;id` or `id:class;id:class`")

    @field_validator("community_code", mode="before")
    @classmethod
    def _blank_is_none(cls, value):
        return None if value in ("", None) else value

    @field_validator("receivers", mode="before")
    @classmethod
    def _split(cls, value):
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace("；", ";").split(";") if p.strip()]
            return [dict(zip(("device_id", "class_name"), p.split(":", 1), strict=False)) for p in parts]
        return value

    @field_validator("ends_at")
    @classmethod
    def _ends_after_start(cls, value: time, info: ValidationInfo) -> time:
        starts_at = info.data.get("starts_at")
        if starts_at is not None and value <= starts_at:
            raise ValueError("must be after starts_at")
        return value

    @field_validator("valid_until")
    @classmethod
    def _valid_after_from(cls, value: date, info: ValidationInfo) -> date:
        valid_from = info.data.get("valid_from")
        if valid_from is not None and value < valid_from:
            raise ValueError("must not be before valid_from")
        return value


class RowError(BaseModel):
    """Why one row of an import was refused."""

    row: int = Field(description="1-based: list position for JSON, spreadsheet row (header = 1) for files")
    column: str | None
    message: str


class ImportResult(BaseModel):
    """What an accepted import wrote."""

    lessons: int
    created: int
    updated: int
    receivers: int


class MatchIn(BaseModel):
    """A day range whose sessions are recomputed."""

    day_from: DbDate
    day_to: DbDate


class MatchOut(BaseModel):
    """How many sessions a recomputation produced, by status, inside the caller's scope."""

    day_from: date
    day_to: date
    sessions: int
    by_status: dict[str, int]


class LessonFigures(BaseModel):
    """The three-classroom figures of one scope and lesson kind (or all kinds)."""

    kind: LessonKind | Literal["all"]
    sessions_scheduled: int = Field(description="sessions on the timetable in the week")
    sessions_past: int = Field(description="of which ended before now")
    sessions_held: int
    opening_rate: float | None = Field(description="开课率: held / past sessions")
    hours_delivered: float = Field(description="main-classroom streamed hours")
    main_classrooms: int = Field(description="main classrooms with a session in the week")
    weekly_lessons_per_main_classroom: float | None = Field(description="held / main classrooms")
    sessions_interrupted: int = Field(description="sessions with at least one interruption")
    receiving_classrooms: int = Field(description="receiving classrooms that joined a held session")
    receiving_schools: int
    receiving_classes: int
    teaching_points: int = Field(description="teaching points in the scope")
    teaching_points_reached: int = Field(description="of which joined a held session in the week")
    teaching_point_reach: float | None
    pairs: int = Field(description="(main school, receiving school) pairs timetabled in the quota window")
    pairs_meeting_quota: int
    pairs_quota_rate: float | None


class ChildLessons(ScopeRef):
    """A child scope's figures."""

    figures: list[LessonFigures]


class LessonSummary(OmitUnset):
    """A scope's three-classroom figures for one ISO week (or a period), with each child's."""

    OPTIONAL = frozenset({"period", "previous"})

    scope: Scope
    week: str = Field(description="the ISO week (with a period: the ISO week of its first day)")
    week_start: date = Field(description="the first day counted (with a period: the period's first day)")
    week_end: date = Field(description="the last day counted (with a period: the period's last day)")
    as_of: datetime
    figures: list[LessonFigures]
    children: list[ChildLessons]
    opening_rate_bands: Bands = Field(description="the colour bands of 开课率")
    period: PeriodInfo | None = Field(None, description="the period counted (only with a period)")
    previous: list[LessonFigures] | None = Field(
        None, description="the scope's figures over the previous period, by kind (only with a period)")


class SessionRow(BaseModel):
    """A matched session."""

    lesson_id: str
    day: date
    kind: LessonKind
    subject: str
    main_device_id: str
    main_school_code: str
    main_school_name: str
    scheduled_start: datetime
    scheduled_end: datetime
    status: SessionStatus
    started_at: datetime | None
    ended_at: datetime | None
    main_streamed_minutes: int
    receivers_expected: int
    receivers_joined: int
    interruptions: int


class SessionPage(BaseModel):
    """One page of sessions, with how many match and the days they were looked for on."""

    total: int = Field(description="every session that matches, on every page")
    page: int
    page_size: int
    day_from: date = Field(description="the first day listed (asked, the period's, or 7 days before day_to)")
    day_to: date = Field(description="the last day listed")
    items: list[SessionRow]


class LiveReceiver(BaseModel):
    """A receiving classroom of a lesson in progress (only those inside the user's scope)."""

    device_id: str
    school_code: str
    school_name: str
    class_name: str
    online: bool
    in_use: bool | None
    joined: bool


class LiveSession(BaseModel):
    """A lesson in progress now, with the state of its classrooms."""

    lesson_id: str
    kind: LessonKind
    subject: str
    scheduled_start: datetime
    scheduled_end: datetime
    main_device_id: str
    main_school_code: str
    main_school_name: str
    main_online: bool
    main_streaming: bool | None
    receivers: list[LiveReceiver]


class WeekFigures(BaseModel):
    """Delivered figures of one ISO week."""

    week: str
    week_start: date
    sessions_past: int
    sessions_held: int
    opening_rate: float | None
    hours_delivered: float
    sessions_interrupted: int
    sessions_missed: int
