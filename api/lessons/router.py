"""Three-classroom routes: figures, sessions, lessons in progress, timetable import, matching."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, UploadFile, status
from fastapi.responses import JSONResponse, Response

from api import audit
from api.deps import AskedPeriod, Conn, CurrentUser, PathScope, role
from api.errors import ImportProblem, problems
from api.export import EXPORT_RESPONSES, ExportFormat, table_response
from api.inputs import DbDate
from api.lessons import importer, service
from api.lessons.models import (
    ImportResult,
    LessonKind,
    LessonSummary,
    LiveSession,
    MatchIn,
    MatchOut,
    RowError,
    SessionPage,
    SessionRow,
    SessionStatus,
    WeekFigures,
)
from core.period import Period
from core.storable import storable
from rollups.matching import match_sessions
from rollups.settings import lesson_settings

router = APIRouter(prefix="/api/v1", tags=["lessons"])

Week = Annotated[str | None, Query(pattern=r"^(19|2[0-9])[0-9]{2}-W(0[1-9]|[1-4][0-9]|5[0-3])$", examples=["2024-W42"])]
SESSION_COLUMNS = tuple(SessionRow.model_fields)
Importer = role(importer.IMPORT_ROLES, "import timetables")


def _refused(errors: list) -> JSONResponse:
    return JSONResponse(status_code=422, content={
        "detail": f"timetable refused: {len({e.row for e in errors})} row(s) with errors, nothing written",
        "errors": [e.model_dump() for e in errors]})


def _either(period: Period, **others: object) -> None:
    """422 when a period is asked together with the route's own range parameters."""
    given = [name for name, value in others.items() if value is not None]
    if given and not period.is_now:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"give either period/from/to or {'/'.join(given)}, not both")


@router.get("/scopes/{level}/{code}/lessons/summary", response_model=LessonSummary,
            summary="三个课堂 figures of one ISO week or a period, by kind, with each child's")
def summary(scope: PathScope, conn: Conn, user: CurrentUser, period: AskedPeriod, week: Week = None) -> LessonSummary:
    """Sessions scheduled and held, 开课率, hours, classrooms, teaching-point reach, pairs meeting their quota.
    With `period` (or `from`/`to`) instead of `week`: the figures over those days, and `previous`, the
    scope's figures over the previous period."""
    _either(period, week=week)
    return service.summary(conn, scope, user, week, period=period)


@router.get("/scopes/{level}/{code}/lessons/sessions", response_model=SessionPage,
            summary="Sessions delivered or received in a scope (format=csv|xlsx exports all matches)",
            responses=EXPORT_RESPONSES)
def sessions(scope: PathScope, conn: Conn, user: CurrentUser, period: AskedPeriod,
             day_from: DbDate | None = None, day_to: DbDate | None = None,
             status_: Annotated[SessionStatus | None, Query(alias="status")] = None,
             kind: LessonKind | None = None,
             page: Annotated[int, Query(ge=1, le=100_000)] = 1,
             page_size: Annotated[int, Query(ge=1, le=500)] = 50,
             format: ExportFormat = "json") -> SessionPage | Response:  # noqa: A002 - query name
    """Matched sessions, newest first; the range (`day_from`/`day_to`, or the days of `period` or
    `from`/`to`) defaults to the last 7 days and spans at most a year."""
    _either(period, day_from=day_from, day_to=day_to)
    if not period.is_now:
        day_from, day_to = period.first, period.last
    day_to = day_to or datetime.now(UTC).date()
    day_from = day_from or day_to - timedelta(days=6)
    if not timedelta(0) <= day_to - day_from <= timedelta(days=366):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "day_from..day_to must span 0 to 366 days")
    exporting = format != "json"
    result = service.sessions(conn, scope, user, day_from=day_from, day_to=day_to, status_=status_, kind=kind,
                              page=1 if exporting else page, page_size=None if exporting else page_size)
    if exporting:
        return table_response([i.model_dump() for i in result.items], SESSION_COLUMNS, format, f"sessions-{scope.code}")
    return result


@router.get("/scopes/{level}/{code}/lessons/live", response_model=list[LiveSession],
            summary="Remote lessons in progress now, with the state of their classrooms")
def live(scope: PathScope, conn: Conn, user: CurrentUser) -> list[LiveSession]:
    """Lessons whose slot is running now; receivers outside the user's scope are left out."""
    return service.live(conn, scope, user)


@router.get("/scopes/{level}/{code}/lessons/weekly", response_model=list[WeekFigures],
            summary="Delivered figures per ISO week (trend)")
def weekly(scope: PathScope, conn: Conn, user: CurrentUser, period: AskedPeriod,
           weeks: Annotated[int, Query(ge=1, le=53, description="the last weeks (without a period)")] = 12
           ) -> list[WeekFigures]:
    """Past sessions, held, 开课率, hours, interrupted and missed per week, oldest first; with `period`
    (or `from`/`to`, which then replaces `weeks`) the ISO weeks it touches, counting only its days."""
    return service.weekly(conn, scope, user, weeks, period=period)


def _import(conn, user, rows: importer.Numbered, source: str) -> ImportResult | JSONResponse:
    lessons, errors = importer.validate(conn, user, rows)
    if errors:
        return _refused(errors)
    if not lessons:
        return _refused([RowError(row=1, column=None, message="no rows to import")])
    return importer.write(conn, user, lessons, source)


@router.post("/lessons/timetable", response_model=ImportResult, status_code=201,
             responses={**problems(403), **problems(422, model=ImportProblem)},
             summary="Import timetable rows (JSON list of TimetableRow); all or nothing")
def import_json(conn: Conn, user: Importer,
                rows: Annotated[list[dict[str, Any]], Body(max_length=importer.MAX_ROWS)]) -> Any:
    """Insert or replace lessons by id; errors name the row (1-based position), column and reason."""
    return _import(conn, user, list(enumerate(rows, start=1)), "timetable:json")


@router.post("/lessons/timetable/upload", response_model=ImportResult, status_code=201,
             responses={**problems(403, 413), **problems(422, model=ImportProblem)},
             summary="Import a timetable file (CSV or XLSX); all or nothing")
def import_file(file: UploadFile, conn: Conn, user: Importer) -> Any:
    """Columns: id, kind, subject, main_device_id, community_code, weekday, starts_at, ends_at,
    valid_from, valid_until, receivers (`id;id` or `id:class;id:class`). Errors name the spreadsheet row."""
    rows, errors = importer.rows_from_file(file.filename or "", file.file.read(importer.MAX_BYTES + 1))
    if errors:
        return _refused(errors)
    return _import(conn, user, rows, f"timetable:{storable(file.filename or '')[:200]}")


@router.post("/lessons/match", response_model=MatchOut, summary="Recompute the sessions of a day range (admin)",
             responses=problems(403))
def match(body: MatchIn, conn: Conn, user: role({"admin"}, "recompute sessions")) -> MatchOut:
    """Rebuild sessions from the timetable and the devices' reports; counts are those inside the caller's scope."""
    span = (body.day_to - body.day_from).days
    if not 0 <= span < lesson_settings().max_match_days:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"day_from..day_to must span 1 to {lesson_settings().max_match_days} days")
    match_sessions(conn, body.day_from, body.day_to, datetime.now(UTC))
    by_status = service.count_by_status(conn, user, body.day_from, body.day_to)
    audit.record(conn, user, "lessons.match", f"{body.day_from}..{body.day_to}", by_status)
    return MatchOut(day_from=body.day_from, day_to=body.day_to, sessions=sum(by_status.values()),
                    by_status=by_status)
