"""Equity routes."""

from fastapi import APIRouter

from api.deps import AskedPeriod, Conn, CurrentUser, PathScope
from api.equity import service
from api.equity.models import Equity

router = APIRouter(prefix="/api/v1", tags=["equity"])


@router.get("/scopes/{level}/{code}/equity", response_model=Equity,
            summary="Each county's coefficient of variation against the 优质均衡 bars, and the urban–rural gap")
def equity(scope: PathScope, conn: Conn, user: CurrentUser, period: AskedPeriod) -> Equity:
    """Enrolment-weighted CV per indicator, county and school group; the locale gap of the scope. With
    `period` (or `from`/`to`) the indicators are taken over it: availability and board use from the
    rollups, boards in service at its end, lessons timetabled in it."""
    return service.equity(conn, scope, user, period=period)
