"""Scope routes: what a scope is, and its figures with each child's."""

from fastapi import APIRouter, Path

from api.deps import Conn, CurrentUser
from api.scopes import service
from api.scopes.access import resolve
from api.scopes.models import Level, Overview, Scope, ScopeRef

router = APIRouter(prefix="/api/v1/scopes", tags=["scopes"])

CodePath = Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$", examples=["421300"])


@router.get("/{level}/{code}", response_model=Scope, summary="A scope and the path above it")
def get_scope(level: Level, conn: Conn, user: CurrentUser, code: str = CodePath) -> Scope:
    """The scope, if the user may see it."""
    return resolve(conn, user, level, code)


@router.get("/{level}/{code}/children", response_model=list[ScopeRef], summary="A scope's children")
def get_children(level: Level, conn: Conn, user: CurrentUser, code: str = CodePath) -> list[ScopeRef]:
    """The child scopes the user may see."""
    return service.children(conn, resolve(conn, user, level, code), user)


@router.get("/{level}/{code}/overview", response_model=Overview, summary="Availability now, with each child's")
def get_overview(level: Level, conn: Conn, user: CurrentUser, code: str = CodePath) -> Overview:
    """Devices, online devices and online rate by kind, for the scope and each child."""
    return service.overview(conn, resolve(conn, user, level, code), user)
