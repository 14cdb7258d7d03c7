"""Equity routes."""

from fastapi import APIRouter

from api.deps import AskedPeriod, Conn, CurrentUser, PathScope
from api.equity import service
from api.equity.models import Equity
from api.targets import service as targets

router = APIRouter(prefix="/api/v1", tags=["equity"])


@router.get("/scopes/{level}/{code}/equity", response_model=Equity,
            summary="Each county's coefficient of variation against the 差异系数 targets, and the urban–rural gap")
def equity(scope: PathScope, conn: Conn, user: CurrentUser, period: AskedPeriod) -> Equity:
    """Enrolment-weighted CV per indicator, county and school group, each group's bar the equity_cv_* target
    that applies to its county (none set: no bar); the locale gap of the scope. With `period` (or
    `from`/`to`) the indicators are taken over it: availability and board use from the rollups, boards in
    service at its end, lessons timetabled in it; the targets are judged on its last day begun."""
    answer = service.equity(conn, scope, user, period=period)
    return targets.attach_equity(conn, answer, targets.judging_day(conn, period))
