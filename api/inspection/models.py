"""Shapes of 智能巡课: the wall of classrooms in session, one classroom enlarged, inspection records
and their figures."""

from datetime import date, datetime, time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StrictBool, WithJsonSchema

from api.inputs import DbText
from api.metrics.models import PeriodSpan

LessonKind = Literal["dedicated", "master", "elite", "local"]  # local: a lesson the room records on its own
Role = Literal["main", "receiving"]
Health = Literal["ok", "problem", "no_picture"]
Problem = Literal["black", "covered", "blurred", "overexposed", "underexposed", "frozen"]
# The wall's health filter: a classroom's health, or one problem of its stills.
HealthFilter = Literal["ok", "problem", "no_picture", "black", "covered", "blurred", "overexposed", "underexposed",
                       "frozen"]
Timestamp = Annotated[datetime, PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
                      WithJsonSchema({"type": "string", "format": "date-time"})]


class WallCamera(BaseModel):
    """A camera's latest still (only a fresh one: taken in the last few minutes)."""

    camera: Literal["teacher", "students", "blackboard", "panorama"]
    snapshot_id: int
    taken_at: Timestamp
    problems: list[Problem]


class WallClassroom(BaseModel):
    """A classroom in session on the wall: where, what lesson, how its picture is, the still shown."""

    device_id: str
    device_kind: Literal["recorder", "board"]
    role: Role
    school_code: str
    school_name: str
    room: str
    lesson_id: str | None
    kind: LessonKind
    subject: str | None
    starts_at: time | None
    ends_at: time | None
    online: bool
    health: Health = Field(description="problem: a fresh still has a problem; no_picture: no still in the last "
                                       "minutes")
    problems: list[Problem]
    cameras: list[WallCamera]
    snapshot_id: int | None = Field(description="the still the wall shows (a camera with a problem first)")
    image: str | None = Field(description="its small copy: a signed link, valid for minutes (docs/architecture.md)")


class SchoolRef(BaseModel):
    """A school among those in session."""

    code: str
    name: str


class Wall(BaseModel):
    """The classrooms in session in a scope now, filtered; counts, subjects and schools of them all."""

    as_of: Timestamp
    in_session: int = Field(description="classrooms in session in the scope (before the filters)")
    by_health: dict[Health, int]
    subjects: list[str]
    schools: list[SchoolRef]
    classrooms: list[WallClassroom] = Field(description="the classrooms the filters let through")


class Still(BaseModel):
    """One still of a camera's short history."""

    snapshot_id: int
    taken_at: Timestamp
    problems: list[Problem]
    thumb: str = Field(description="signed link to the small copy")
    image: str = Field(description="signed link to the still itself")


class CameraHistory(BaseModel):
    """A camera's stills, newest first."""

    camera: Literal["teacher", "students", "blackboard", "panorama"]
    stills: list[Still]


class RoomDevice(BaseModel):
    """A device in the same room."""

    device_id: str
    kind: Literal["board", "recorder", "gateway"]
    online: bool
    last_seen: Timestamp | None
    streaming: bool | None
    recording: bool | None


class LessonRoom(BaseModel):
    """A classroom of a remote lesson."""

    device_id: str
    school_name: str
    room: str
    class_name: str | None = None


class SessionLesson(BaseModel):
    """The lesson the classroom is in now, with its main and receiving classrooms (none for a local one)."""

    lesson_id: str | None
    kind: LessonKind
    subject: str | None
    role: Role
    starts_at: time | None
    ends_at: time | None
    main: LessonRoom | None
    receivers: list[LessonRoom]


class InspectionRow(BaseModel):
    """An inspection record (巡课记录)."""

    id: int
    inspected_at: Timestamp
    inspector: str
    device_id: str
    school_code: str
    school_name: str
    room: str
    lesson_id: str | None
    day: date
    lesson_kind: LessonKind
    role: Role
    subject: str | None
    snapshot_id: int | None
    teacher_present: bool
    students_present: bool
    receiving_connected: bool | None
    picture_ok: bool
    sound_ok: bool
    board_in_use: bool
    note: str
    has_problem: bool


class ClassroomView(BaseModel):
    """One classroom enlarged: its lesson now, the devices in the room, each camera's recent stills, and
    the latest inspection records."""

    device_id: str
    device_kind: Literal["recorder", "board"]
    school_code: str
    school_name: str
    room: str
    in_session: bool
    lesson: SessionLesson | None
    devices: list[RoomDevice]
    cameras: list[CameraHistory]
    inspections: list[InspectionRow]


class InspectionIn(BaseModel):
    """What the inspector saw in the classroom (the rubric), in which lesson, on which still."""

    model_config = ConfigDict(extra="forbid")

    lesson_id: DbText | None = Field(default=None, min_length=1, max_length=64,
                                     description="the remote lesson being inspected (none: the room's own lesson)")
    snapshot_id: int | None = Field(default=None, ge=1, le=2**62, description="the still looked at")
    teacher_present: StrictBool
    students_present: StrictBool
    receiving_connected: StrictBool | None = Field(
        default=None, description="the receiving classrooms (or the main one) are connected; remote lessons only")
    picture_ok: StrictBool
    sound_ok: StrictBool
    board_in_use: StrictBool
    note: DbText = Field(default="", max_length=500)


class KindFigures(BaseModel):
    """Inspections of one kind of lesson."""

    kind: LessonKind
    classrooms_inspected: int
    inspections: int
    with_problems: int
    problem_share: float | None = Field(description="with_problems / inspections; null when none")


class ChildFigures(BaseModel):
    """Inspections in one child of the scope."""

    level: str
    code: str
    name: str
    classrooms_inspected: int
    inspections: int
    with_problems: int
    problem_share: float | None


class InspectionFigures(BaseModel):
    """Inspections in a scope and period: classrooms inspected, the share that found a problem, by kind
    of lesson and by child scope."""

    period: PeriodSpan
    classrooms_inspected: int = Field(description="distinct classrooms with at least one inspection")
    inspections: int
    with_problems: int = Field(description="inspections that found at least one problem")
    problem_share: float | None = Field(description="with_problems / inspections; null when none")
    classrooms_with_problems: int = Field(description="classrooms with at least one inspection that found one")
    by_kind: list[KindFigures]
    children: list[ChildFigures]
