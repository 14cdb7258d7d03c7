"""Equity routes."""

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import Conn, CurrentUser
from api.equity import service
from api.equity.models import Equity
from api.scopes.access import resolve
from api.scopes.models import Level

router = APIRouter(prefix="/api/v1", tags=["equity"])

Code = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$", examples=["421300"])]


@router.get("/scopes/{level}/{code}/equity", response_model=Equity,
            summary="Each county's coefficient of variation against the 优质均衡 bars, and the urban–rural gap")
def equity(level: Level, code: Code, conn: Conn, user: CurrentUser) -> Equity:
    """Enrolment-weighted CV per indicator, county and school group; the locale gap of the scope."""
    return service.equity(conn, resolve(conn, user, level, code), user)
