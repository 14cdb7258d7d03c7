"""Target routes: what a target can be set on, set, list with progress and league table, withdraw."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import Conn, CurrentUser, PathScope, role
from api.errors import problems
from api.targets import progress as targets_progress
from api.targets import service
from api.targets.models import Target, Targetable, TargetIn, TargetProgress

router = APIRouter(prefix="/api/v1", tags=["targets"])

OnlyTarget = Annotated[int | None, Query(ge=1, le=2**62, description="only this target (an empty list when it "
                                                                     "does not apply to the scope)")]


@router.get("/scopes/{level}/{code}/targets", response_model=list[TargetProgress],
            summary="Targets that apply to a scope, its standing, time left, and its children's league table")
def progress(scope: PathScope, conn: Conn, user: CurrentUser, target_id: OnlyTarget = None) -> list[TargetProgress]:
    """Every target set on the scope or above it (on a figure or a measure), with the scope's value,
    status and gap, days to the deadline, and the children judged against it worst first."""
    return targets_progress.progress(conn, scope, user, target_id)


@router.post("/scopes/{level}/{code}/targets", response_model=Target, status_code=201,
             summary="Set a target on a scope (it applies to the scope and below)", responses=problems(403))
def set_target(scope: PathScope, body: TargetIn, conn: Conn,
               user: role(service.SETTER_ROLES, "set targets")) -> Target:
    """Set (or replace, for the same figure and deadline) a target; audited."""
    return service.create(conn, user, scope, body)


@router.get("/targets-catalogue", response_model=list[Targetable],
            summary="Every key a target can be set on: the catalogue's figures and the measures")
def catalogue(_user: CurrentUser) -> list[Targetable]:
    """Key, kind (figure or measure), names, unit and which direction is better."""
    return service.targetable()


@router.get("/targets/{target_id}", response_model=Target, summary="One target")
def get_target(target_id: Annotated[int, Path(ge=1, le=2**62)], conn: Conn, user: CurrentUser) -> Target:
    """A target the user may see."""
    return service.get(conn, user, target_id)


@router.delete("/targets/{target_id}", status_code=204, summary="Withdraw a target", responses=problems(403))
def delete_target(target_id: Annotated[int, Path(ge=1, le=2**62)], conn: Conn,
                  user: role(service.SETTER_ROLES, "withdraw targets")) -> None:
    """Withdraw a target set within the user's own scope; audited."""
    service.delete(conn, user, target_id)
