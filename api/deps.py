"""Dependencies every router uses: a pooled connection, the authenticated user, the scope a
path names (checked against the user's), the role a route needs and the period asked about."""

from collections.abc import Collection, Iterator
from typing import Annotated, Any, Literal

import psycopg
from fastapi import Depends, HTTPException, Path, Query, Request, status

from api.auth import display
from api.auth.models import User
from api.auth.service import authenticate_token, oauth2_scheme
from api.inputs import DbDate
from api.metrics.service import school_calendar
from api.scopes.access import resolve
from api.scopes.models import Scope
from core.period import MAX_DAYS, Period, PeriodError, PeriodName, parse_period
from core.scope import Level

Code = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$", examples=["421300"])]


def get_conn(request: Request) -> Iterator[psycopg.Connection]:
    """A pooled connection for one request, in a transaction committed at the end."""
    with request.app.state.pool.connection() as conn:
        yield conn


Conn = Annotated[psycopg.Connection, Depends(get_conn)]


def signed_in(conn: Conn, token: Annotated[str, Depends(oauth2_scheme)], request: Request) -> User:
    """The user the bearer token belongs to; 401 if it is missing, expired or revoked.

    A display link's token (a wall screen) names the link's read-only principal: every request with it
    but GET and HEAD answers 403 here, the one place every route taking a bearer token passes through,
    and 401 once the link is revoked (api/auth/display.py)."""
    if display.is_display_token(token):
        return display.reader(conn, token, request.method)
    return authenticate_token(conn, token)


SignedIn = Annotated[User, Depends(signed_in)]


def current_user(user: SignedIn) -> User:
    """The signed-in user, once their password is their own: while a generated, reset or expired one
    must be changed, 403 (only /auth/me, /auth/password and /auth/logout take a `SignedIn` user)."""
    if user.must_change_password:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "change your password first (POST /api/v1/auth/password)")
    return user


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


def asked_period(
        conn: Conn,
        period: Annotated[PeriodName | None, Query(
            description="the period asked about, in the schools' time zone (default: now); see docs/metrics.md",
            examples=["yesterday"])] = None,
        from_: Annotated[DbDate | None, Query(
            alias="from", description=f"instead of period: the first day of a range of at most {MAX_DAYS} days",
            examples=["2025-03-01"])] = None,
        to: Annotated[DbDate | None, Query(
            description="the last day of that range (inclusive, not after today; default today)",
            examples=["2025-03-31"])] = None) -> Period:
    """The period `period=` or `from=`/`to=` names (core/period.py); `now` when none is given.
    422 with the reason when it cannot be answered (both given, from after to, to in the future,
    too long a range)."""
    try:
        return parse_period(period, from_, to, calendar=school_calendar(conn) if period == "this_term" else None)
    except PeriodError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


AskedPeriod = Annotated[Period, Depends(asked_period)]

Hours = Annotated[Literal["all", "lessons"], Query(
    description="all: the whole of each day; lessons: only the lesson hours of the period's school days "
                "(needs a period; for availability and use figures, see docs/metrics.md)")]
