"""Map route: a scope's child boundaries or its schools as points, revalidated by ETag."""

import hashlib
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import Response

from api.deps import Conn, CurrentUser, PathScope
from api.geo import service
from api.geo.models import ScopeMap

router = APIRouter(prefix="/api/v1", tags=["map"])

CACHE_CONTROL = "private, no-cache"  # a client may keep the map, and asks with its ETag whether it changed
ETAG_HEADER = {"ETag": {"description": "the answer's fingerprint, for If-None-Match", "schema": {"type": "string"}}}
RESPONSES = {200: {"headers": ETAG_HEADER},
             304: {"description": "Not modified: the map is still the one the If-None-Match ETag names",
                   "headers": ETAG_HEADER}}


def etag_of(body: bytes) -> str:
    """A strong ETag of an answer's bytes."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """True when an If-None-Match header names this ETag (weakly compared, as RFC 9110 asks) or is `*`."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


@router.get("/scopes/{level}/{code}/map", response_model=ScopeMap, responses=RESPONSES,
            summary="A scope's map: its children's boundaries, or its schools as points with their state")
def scope_map(scope: PathScope, conn: Conn, user: CurrentUser,
              if_none_match: Annotated[str | None, Header(max_length=1000)] = None) -> Response:
    """A province's cities or a city's counties with their boundaries (from the division data, simplified
    once); for a county, a school or a community, each county its schools lie in and the schools, at their
    coordinates, with their state now. Answers 304 when `If-None-Match` names the answer's ETag."""
    body = service.scope_map(conn, scope, user).model_dump_json().encode()
    etag = etag_of(body)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
