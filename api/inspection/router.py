"""智能巡课 routes: the wall, a classroom enlarged, its stills behind signed links, inspection records.

Scope first, as everywhere: a scope outside the user's, or a device whose school is, answers 404.
The image route alone takes no token: its link was signed for a user who could see the still
(api/inspection/links.py).
"""

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import Response

from api import audit
from api.deps import AskedPeriod, Conn, CurrentUser, PathScope, role
from api.errors import problems
from api.export import EXPORT_RESPONSES, ExportFormat, table_response
from api.inputs import DbText
from api.inspection import links, records, service
from api.inspection.models import (
    ClassroomView,
    HealthFilter,
    InspectionFigures,
    InspectionIn,
    InspectionRow,
    LessonKind,
    Wall,
)
from api.metrics.models import span_of
from api.metrics.service import school_calendar
from api.scopes.access import resolve
from core.settings import platform_settings

router = APIRouter(prefix="/api/v1", tags=["inspection"])

INSPECTOR_ROLES = {"admin", "manager", "operations"}
DeviceId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{3,64}$", examples=["B4213030001-001"])]
SnapshotId = Annotated[int, Path(ge=1, le=2**62)]
RECENT_INSPECTIONS = 5
IMAGE_RESPONSES: dict[int | str, dict] = {
    200: {"description": "the JPEG", "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
    304: {"description": "not modified: the browser's copy (If-None-Match) is this still"},
}


def _now() -> datetime:
    return datetime.now(UTC)


@router.get("/scopes/{level}/{code}/inspection/wall", response_model=Wall,
            summary="巡课 wall: the classrooms in session now with their latest stills and health")
def get_wall(scope: PathScope, conn: Conn,
             kind: LessonKind | None = None,
             subject: Annotated[DbText | None, Query(max_length=64)] = None,
             school: Annotated[str | None, Query(pattern=r"^[0-9]{10}$")] = None,
             health: HealthFilter | None = None) -> dict:
    """Every classroom in session in the scope is counted; those the filters let through are listed, each
    with a signed link to the small copy of the still its tile shows."""
    return service.wall(conn, scope.level, scope.code, school_calendar(conn), _now(), kind=kind, subject=subject,
                        school=school, health=health)


def _visible_device(conn: Conn, user, device_id: str) -> dict:
    device = service.device_of(conn, device_id)
    if device is None or device["kind"] not in ("recorder", "board"):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such classroom")
    resolve(conn, user, "school", device["school_code"])
    return device


@router.get("/inspection/classrooms/{device_id}", response_model=ClassroomView,
            summary="A classroom enlarged: its lesson now, devices, each camera's recent stills, inspections")
def get_classroom(device_id: DeviceId, conn: Conn, user: CurrentUser) -> dict:
    """The classroom of a recorder or board in the user's scope (404 otherwise)."""
    device = _visible_device(conn, user, device_id)
    now = _now()
    recent = records.list_records(conn, "school", device["school_code"], datetime(1900, 1, 1, tzinfo=UTC), now,
                                  device=device_id, limit=RECENT_INSPECTIONS)
    return service.classroom(conn, device, school_calendar(conn), now, recent)


@router.get("/snapshots/{snapshot_id}/image", response_class=Response, responses=IMAGE_RESPONSES,
            summary="A still (or its small copy) through a signed link from the wall or a classroom")
def get_image(snapshot_id: SnapshotId, conn: Conn, request: Request,
              exp: Annotated[int, Query(ge=0, le=2**40, description="expiry of the link, epoch seconds")],
              sig: Annotated[str, Query(pattern=r"^[0-9a-f]{32}$", description="the link's signature")],
              size: Literal["thumb", "full"] = "full") -> Response:
    """The JPEG, if the link is this API's own and has not expired; 404 otherwise (or once the still has left
    the history). A still never changes: the browser keeps it while its link lives."""
    if not links.valid(snapshot_id, size, exp, sig, _now()):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such still, or its link has expired")
    tag = f'"s{snapshot_id}-{size}"'
    headers = {"ETag": tag, "Cache-Control": f"private, max-age={2 * links.BUCKET_S}, immutable"}
    if tag in request.headers.get("if-none-match", ""):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    data = service.image(conn, snapshot_id, size)
    if data is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such still, or its link has expired")
    return Response(data, media_type="image/jpeg", headers=headers)


@router.post("/inspection/classrooms/{device_id}/inspections", response_model=InspectionRow, status_code=201,
             responses=problems(403), summary="Record an inspection (巡课记录) of a classroom against the rubric")
def create_inspection(device_id: DeviceId, body: InspectionIn, conn: Conn,
                      user: role(INSPECTOR_ROLES, "record inspections")) -> dict:
    """Linked to the lesson (422 if the device is not one of its classrooms) and the still looked at (422 if it
    is not one of the device's kept stills); the classroom must be in the user's scope (404)."""
    device = _visible_device(conn, user, device_id)
    try:
        inspection_id = records.record(conn, body.model_dump(), device, user.username, _now(),
                                       platform_settings().timezone)
    except records.RecordError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    audit.record(conn, user, "inspection.create", str(inspection_id), {"device_id": device_id, **body.model_dump()})
    return records.one(conn, inspection_id)


@router.get("/scopes/{level}/{code}/inspections", response_model=list[InspectionRow], responses=EXPORT_RESPONSES,
            summary="Inspection records in a scope and period, newest first (format=csv|xlsx to export)")
def list_inspections(scope: PathScope, conn: Conn, period: AskedPeriod,
                     kind: LessonKind | None = None, has_problem: bool | None = None,
                     limit: Annotated[int, Query(ge=1, le=5000)] = 500,
                     format: ExportFormat = "json") -> list[dict] | Response:  # noqa: A002 - query name
    """The period's records (now: today's so far)."""
    start, end = records.window(period)
    rows = records.list_records(conn, scope.level, scope.code, start, end, kind=kind, problem=has_problem,
                                limit=limit)
    return rows if format == "json" else table_response(rows, records.COLUMNS, format, f"inspections-{scope.code}")


@router.get("/scopes/{level}/{code}/inspections/figures", response_model=InspectionFigures,
            summary="Classrooms inspected and the share of inspections that found a problem, by kind and child")
def inspection_figures(scope: PathScope, conn: Conn, period: AskedPeriod) -> dict:
    """Over the period (now: today so far); docs/metrics.md defines each figure."""
    start, end = records.window(period)
    return {"period": span_of(period), **records.figures(conn, scope.level, scope.code, start, end)}

