"""Scope routes: what a scope is, and its figures with each child's."""

from fastapi import APIRouter

from api.deps import Conn, CurrentUser, PathScope
from api.scopes import service
from api.scopes.models import Overview, Scope, ScopeRef

router = APIRouter(prefix="/api/v1/scopes", tags=["scopes"])


@router.get("/{level}/{code}", response_model=Scope, summary="A scope and the path above it")
def get_scope(scope: PathScope) -> Scope:
    """The scope, if the user may see it."""
    return scope


@router.get("/{level}/{code}/children", response_model=list[ScopeRef], summary="A scope's children")
def get_children(scope: PathScope, conn: Conn, user: CurrentUser) -> list[ScopeRef]:
    """The child scopes the user may see."""
    return service.children(conn, scope, user)


@router.get("/{level}/{code}/overview", response_model=Overview, summary="Availability now, with each child's")
def get_overview(scope: PathScope, conn: Conn, user: CurrentUser) -> Overview:
    """Devices, online devices and online rate by kind, for the scope and each child."""
    return service.overview(conn, scope, user)
