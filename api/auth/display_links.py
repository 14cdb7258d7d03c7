"""Administrators issue, list and revoke display links, within their own scope, every write audited.

Bounds as in the registry's administration (api/registry/service.py): a link's scope must lie inside
the administrator's when it is issued (403 otherwise), and a link whose scope lies outside is not
shown and cannot be revoked (404). Issue and revoke each add an `audit_log` row in the transaction
of the write (`admin.display_link.issue`, `admin.display_link.revoke`, detail before/after: the
link as administrators see it, never its secret or its hash).
"""

from typing import Any

from fastapi import HTTPException, status
from sqlalchemy import func
from sqlmodel import Session, col, select

from api.auth import display
from api.auth.display_models import DisplayLinkCreate, DisplayLinkIssued, DisplayLinkPublic
from api.auth.models import User
from api.registry.models import DisplayLink, Page
from api.registry.service import dump, inside, record, within


def _visible(admin: User) -> Any:
    return within(admin, col(DisplayLink.scope_level), col(DisplayLink.scope_code))


def issue(session: Session, admin: User, data: DisplayLinkCreate) -> DisplayLinkIssued:
    """A new link for a scope inside the administrator's, answered with its secret (this once)."""
    if not inside(session, admin, data.scope_level, data.scope_code):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"{data.scope_level} {data.scope_code} lies outside your scope (or does not exist)")
    key = display.new_key()
    link = DisplayLink(**data.model_dump(), secret_hash=display.key_hash(key), created_by=admin.username)
    session.add(link)
    session.flush()
    session.refresh(link)
    after = dump(link, DisplayLinkPublic)
    record(session, admin, "display_link.issue", str(link.id), None, after)
    return DisplayLinkIssued(**after, key=key, wall_path=display.wall_path(key))


def listed(session: Session, admin: User, revoked: bool | None, limit: int, offset: int) -> Page:
    """Links whose scope lies inside the administrator's: live ones first, newest first."""
    query = select(DisplayLink).where(_visible(admin))
    if revoked is not None:
        query = query.where(col(DisplayLink.revoked_at).is_not(None) if revoked else col(DisplayLink.revoked_at).is_(None))
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(DisplayLink.revoked_at).is_not(None), col(DisplayLink.id).desc())
                        .limit(limit).offset(offset)).all()
    return Page(items=[DisplayLinkPublic(**dump(r, DisplayLinkPublic)) for r in rows], total=total)


def revoke(session: Session, admin: User, link_id: int) -> DisplayLinkPublic:
    """The link stops working at once: its secret and every token issued for it answer 401; 409 when revoked
    already, 404 when it is not a link of the administrator's scope."""
    link = session.exec(select(DisplayLink).where(DisplayLink.id == link_id, _visible(admin))
                        .with_for_update()).first()
    if link is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such display link in your scope")
    if link.revoked_at is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"display link {link_id} is revoked already")
    before = dump(link, DisplayLinkPublic)
    link.revoked_at, link.revoked_by = func.now(), admin.username
    session.add(link)
    session.flush()
    session.refresh(link)
    after = dump(link, DisplayLinkPublic)
    record(session, admin, "display_link.revoke", str(link_id), before, after)
    return DisplayLinkPublic(**after)
