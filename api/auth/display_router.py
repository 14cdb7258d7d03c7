"""Display links over HTTP: administrators issue, list and revoke them (`/api/v1/admin/display-links`), and a
wall screen trades its link's secret for a read-only token (`POST /api/v1/auth/display`)."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Security
from fastapi.security import APIKeyHeader

from api.auth import display, display_links
from api.auth.display_models import (
    DisplayLinkCreate,
    DisplayLinkIssued,
    DisplayLinkPublic,
    DisplayToken,
)
from api.deps import Conn, role
from api.errors import problems
from api.inputs import INT_MAX
from api.registry.models import Page
from api.registry.session import DbSession

router = APIRouter(prefix="/api/v1", tags=["display"])

Admin = role({"admin"}, "manage display links")
LinkId = Annotated[int, Path(ge=1, le=2**62)]
display_key_header = APIKeyHeader(name="X-Display-Key", scheme_name="DisplayKey", auto_error=False,
                                  description="a display link's secret, as issued by an administrator")


@router.post("/auth/display", response_model=DisplayToken, summary="A wall screen's read-only token for its link",
             responses=problems(401))
def exchange(conn: Conn, key: Annotated[str | None, Security(display_key_header)]) -> DisplayToken:
    """Trade a display link's secret (header `X-Display-Key`) for a bearer token of the link's principal: role
    `display`, the link's scope, valid for 15 minutes (exchange again before it runs out), with the link's
    pages and rotation. The token reads (GET) and nothing else: any other method answers 403 on every route.
    A missing, unknown, garbled or revoked secret answers 401 (its `detail` says when the link was revoked);
    once a link is revoked, every token issued for it answers 401 too."""
    return display.exchange(conn, key)


@router.get("/admin/display-links", response_model=Page[DisplayLinkPublic],
            summary="Display links inside your scope (admin)", responses=problems(403))
def list_links(admin: Admin, session: DbSession,
               revoked: Annotated[bool | None, Query(description="true: revoked links only; false: live only")] = None,
               limit: Annotated[int, Query(ge=1, le=500)] = 100,
               offset: Annotated[int, Query(ge=0, le=INT_MAX)] = 0) -> Page:
    """Links whose scope lies inside the administrator's, live ones first, newest first (never a secret)."""
    return display_links.listed(session, admin, revoked, limit, offset)


@router.post("/admin/display-links", response_model=DisplayLinkIssued, status_code=201,
             summary="Issue a display link for a wall screen (admin)", responses=problems(403))
def issue_link(body: DisplayLinkCreate, admin: Admin, session: DbSession) -> DisplayLinkIssued:
    """A link bound to a scope inside yours (403 otherwise) with the cockpit pages it rotates through, in order,
    each shown `rotate_s` seconds. Answered with its secret (`key`) and the cockpit path that opens it
    (`wall_path`), this once: only the secret's SHA-256 is kept. Audited."""
    return display_links.issue(session, admin, body)


@router.post("/admin/display-links/{link_id}/revoke", response_model=DisplayLinkPublic,
             summary="Revoke a display link (admin)", responses=problems(403, 409))
def revoke_link(link_id: LinkId, admin: Admin, session: DbSession) -> DisplayLinkPublic:
    """The link stops working at once: its secret and every token issued for it answer 401, and its screen
    says the link was revoked. 409 when revoked already; 404 when not a link of your scope. Audited."""
    return display_links.revoke(session, admin, link_id)
