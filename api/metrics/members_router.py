"""Which schools: the schools behind a scope's figure, sorted, filtered, paged and exportable."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import Response

from api.deps import AskedPeriod, Conn, CurrentUser, Hours, PathScope
from api.export import EXPORT_RESPONSES, ExportFormat, table_response
from api.inputs import DbText
from api.metrics import members
from api.metrics.router import FigureKey, figure_info, known

router = APIRouter(prefix="/api/v1", tags=["figures"])

COLUMNS = ("rank", "code", "name", "county_name", "city_name", "value", "num", "den")
PERIOD_COLUMNS = ("previous", "change")
SchoolFilter = Annotated[DbText | None, Query(max_length=64, examples=["曾都"], description=(
    "a part of the school's or its county's name, or the start of the school's code"))]


@router.get("/scopes/{level}/{code}/schools", response_model=members.SchoolMembers, responses=EXPORT_RESPONSES,
            summary="The schools behind a figure, worst or best first, now or over a period (format=csv|xlsx "
                    "exports every match)")
def schools(scope: PathScope, conn: Conn, user: CurrentUser, period: AskedPeriod, figure: FigureKey = "online_rate",
            order: members.Order = "worst", by: members.SortBy = "value",
            q: SchoolFilter = None,
            limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
            offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
            format: ExportFormat = "json", hours: Hours = "all") -> members.SchoolMembers | Response:  # noqa: A002
    """Every school of the scope inside the user's bounds with its value, numerator and denominator of
    the figure (by the catalogue's own formula), its county and city; over a period (`period` or
    `from`/`to`) also its previous value and the change. `total` counts every match; `limit` and
    `offset` page through them; an export holds them all. `by=change` orders by the change since the
    previous period (with a period); `hours=lessons` counts the lesson hours only."""
    known([figure])
    try:
        rows, as_of, info = members.school_figures(conn, scope, user, figure, period, order=order, by=by, q=q,
                                                       lessons=hours == "lessons")
    except members.NoHistory as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    if format != "json":
        suffix = ("" if info is None else f"-{info.from_}_{info.to}") + ("-lessons" if hours == "lessons" else "")
        columns = COLUMNS + (PERIOD_COLUMNS if info else ())
        return table_response(rows, columns, format, f"schools-{figure}-{scope.code}{suffix}")
    page = [members.SchoolFigure(**r) for r in rows[offset:offset + limit]]
    answer = {"scope": scope, "figure": figure_info(figure), "order": order, "by": by, "q": q or None, "as_of": as_of,
              "total": len(rows), "offset": offset, "limit": limit, "items": page}
    extra = {"period": info} if info else {}
    return members.SchoolMembers(**answer, **extra, **({"hours": "lessons"} if hours == "lessons" else {}))
