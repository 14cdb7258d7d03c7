"""Community routes: coverage of a scope, the communities of a scope, one community."""

from fastapi import APIRouter
from fastapi.responses import Response

from api.communities import service
from api.communities.models import CommunityDetail, CommunityRow, Coverage
from api.deps import AskedPeriod, Code, Conn, CurrentUser, PathScope
from api.export import EXPORT_RESPONSES, ExportFormat, table_response
from api.targets import service as targets

router = APIRouter(prefix="/api/v1", tags=["communities"])

LIST_COLUMNS = tuple(CommunityRow.model_fields)


@router.get("/scopes/{level}/{code}/communities/coverage", response_model=Coverage,
            summary="教联体 coverage of compulsory-education schools against the targets, with each child's")
def coverage(scope: PathScope, conn: Conn, user: CurrentUser, period: AskedPeriod) -> Coverage:
    """Covered share against the community_coverage targets of the target table, communities by kind, size
    against the cap, cross-county count; with `period` (or `from`/`to`) as of its end (memberships joined,
    communities founded by then), the targets judged on that day."""
    answer = service.coverage(conn, scope, user, period)
    return targets.attach_coverage(conn, answer, targets.judging_day(conn, period))


@router.get("/scopes/{level}/{code}/communities", response_model=list[CommunityRow],
            summary="Communities with a school in the scope (format=csv|xlsx exports)", responses=EXPORT_RESPONSES)
def list_communities(scope: PathScope, conn: Conn, user: CurrentUser, period: AskedPeriod,
                     format: ExportFormat = "json") -> list[CommunityRow] | Response:  # noqa: A002 - query name
    """Lead school, kind, members, members' online rate now, lessons from the lead in the last weeks; with
    `period` (or `from`/`to`) members as of its end and lessons over its days (the online rate stays now)."""
    rows = service.list_communities(conn, scope, user, period)
    if format != "json":
        return table_response([r.model_dump() for r in rows], LIST_COLUMNS, format, f"communities-{scope.code}")
    return rows


@router.get("/communities/{code}", response_model=CommunityDetail, summary="A community and its member schools")
def get_community(code: Code, conn: Conn, user: CurrentUser, period: AskedPeriod) -> CommunityDetail:
    """Member schools outside the user's scope are left out; 404 when none is inside it. With `period` (or
    `from`/`to`): members as of its end, lessons over its days."""
    return service.get_community(conn, user, code, period)
