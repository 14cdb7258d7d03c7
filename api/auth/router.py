"""Login and who-am-I."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from api.auth import service
from api.auth.models import Token, User
from api.deps import Conn, CurrentUser

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/token", response_model=Token, summary="Log in (OAuth2 password flow)")
def token(conn: Conn, form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request) -> Token:
    """Exchange a username and password for a bearer token (failed attempts are throttled per user and IP)."""
    client = request.client.host if request.client else "unknown"
    return service.login(conn, form.username, form.password, client)


@router.post("/logout", status_code=204, summary="Revoke the bearer token")
def logout(conn: Conn, _user: CurrentUser, token: Annotated[str, Depends(service.oauth2_scheme)]) -> None:
    """The token stops working at once."""
    service.logout(conn, token)


@router.get("/me", response_model=User, summary="The logged-in user and their scope")
def me(user: CurrentUser) -> User:
    """Who the token belongs to."""
    return user
