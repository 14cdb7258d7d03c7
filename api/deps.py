"""Dependencies every router uses: a pooled connection, the authenticated user, the scope a
path names (checked against the user's) and the role a route needs."""

from collections.abc import Collection, Iterator
from typing import Annotated, Any

import psycopg
from fastapi import Depends, HTTPException, Path, Request, status

from api.auth.models import User
from api.auth.service import authenticate_token, oauth2_scheme
from api.scopes.access import resolve
from api.scopes.models import Scope
from core.scope import Level

Code = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$", examples=["421300"])]


def get_conn(request: Request) -> Iterator[psycopg.Connection]:
    """A pooled connection for one request, in a transaction committed at the end."""
    with request.app.state.pool.connection() as conn:
        yield conn


Conn = Annotated[psycopg.Connection, Depends(get_conn)]


def current_user(conn: Conn, token: Annotated[str, Depends(oauth2_scheme)]) -> User:
    """The user the bearer token belongs to; 401 if it is missing, expired or revoked."""
    return authenticate_token(conn, token)


CurrentUser = Annotated[User, Depends(current_user)]


def path_scope(level: Level, code: Code, conn: Conn, user: CurrentUser) -> Scope:
    """The scope `…/scopes/{level}/{code}/…` names, if the user may see it; 404 otherwise."""
    return resolve(conn, user, level, code)


PathScope = Annotated[Scope, Depends(path_scope)]


def role(allowed: Collection[str], action: str) -> Any:
    """The user as a dependency, if their role is one of `allowed`; 403 "role … may not {action}" otherwise."""

    def user_who_may(user: CurrentUser) -> User:
        if user.role not in allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {user.role} may not {action}")
        return user

    return Annotated[User, Depends(user_who_may)]
