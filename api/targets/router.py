"""Target routes: set, list with progress and league table, withdraw."""

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import Conn, CurrentUser, PathScope, role
from api.errors import problems
from api.metrics import service as metrics
from api.metrics.models import RankedChild
from api.scopes.models import ScopeRef
from api.targets import service
from api.targets.models import Target, TargetIn, TargetProgress

router = APIRouter(prefix="/api/v1", tags=["targets"])


@router.get("/scopes/{level}/{code}/targets", response_model=list[TargetProgress],
            summary="Targets that apply to a scope, its standing, and its children's league table")
def progress(scope: PathScope, conn: Conn, user: CurrentUser) -> list[TargetProgress]:
    """Every target set on the scope or above it, with attainment ranked worst first."""
    path = [*scope.parents, ScopeRef(level=scope.level, code=scope.code, name=scope.name)]
    targets = service.targets_on(conn, path)
    if not targets:
        return []
    figures = sorted({t.figure for t in targets})
    result = metrics.compute(conn, scope, user, figures)
    today = metrics.local_date(conn, result.as_of)
    service.attach(conn, result, today)
    out = []
    for t in targets:
        value = result.figures[t.figure].value
        league = metrics.rank(result, t.figure, "worst", len(result.children))
        league = [RankedChild(**c.model_dump(exclude={"target"}), target=service.judge(t, c.value, today))
                  for c in league]
        out.append(TargetProgress(target=t, scope_value=value, scope_status=service.judge(t, value, today),
                                  children=league))
    return out


@router.post("/scopes/{level}/{code}/targets", response_model=Target, status_code=201,
             summary="Set a target on a scope (it applies to the scope and below)", responses=problems(403))
def set_target(scope: PathScope, body: TargetIn, conn: Conn,
               user: role(service.SETTER_ROLES, "set targets")) -> Target:
    """Set (or replace, for the same figure and deadline) a target; audited."""
    return service.create(conn, user, scope, body)


@router.get("/targets/{target_id}", response_model=Target, summary="One target")
def get_target(target_id: Annotated[int, Path(ge=1, le=2**62)], conn: Conn, user: CurrentUser) -> Target:
    """A target the user may see."""
    return service.get(conn, user, target_id)


@router.delete("/targets/{target_id}", status_code=204, summary="Withdraw a target", responses=problems(403))
def delete_target(target_id: Annotated[int, Path(ge=1, le=2**62)], conn: Conn,
                  user: role(service.SETTER_ROLES, "withdraw targets")) -> None:
    """Withdraw a target set within the user's own scope; audited."""
    service.delete(conn, user, target_id)
