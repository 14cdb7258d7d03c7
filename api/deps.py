"""Dependencies every router uses: a pooled connection and the authenticated user."""

from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request

from api.auth.models import User
from api.auth.service import authenticate_token, oauth2_scheme


def get_conn(request: Request) -> Iterator[psycopg.Connection]:
    """A pooled connection for one request, in a transaction committed at the end."""
    with request.app.state.pool.connection() as conn:
        yield conn


Conn = Annotated[psycopg.Connection, Depends(get_conn)]


def current_user(conn: Conn, token: Annotated[str, Depends(oauth2_scheme)]) -> User:
    """The user the bearer token belongs to; 401 if it is missing, expired or revoked."""
    return authenticate_token(conn, token)


CurrentUser = Annotated[User, Depends(current_user)]
