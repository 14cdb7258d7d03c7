"""Login, logout, who-am-I, and the administrators' view of locked accounts."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, status

from api.auth import service
from api.auth.models import AccountLock, LoginForm, PasswordChange, Token, User
from api.deps import Conn, SignedIn, role
from api.errors import problems
from api.scopes.access import resolve

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

Username = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[^\x00/]+$", examples=["zengdu"])]
Admin = role({"admin"}, "manage account locks")


@router.post("/token", response_model=Token, summary="Log in (OAuth2 password flow)",
             responses=problems(401, 423, 429))
def token(conn: Conn, form: Annotated[LoginForm, Depends()], request: Request) -> Token:
    """Exchange a username and password for a bearer token.

    Failures are throttled per client address (429) and counted per account: repeated failures
    lock the account for a growing time (423, whatever the password). The cockpit names the
    browser it logs in for (`X-Cockpit-Client` with `X-Cockpit-Secret`); nobody else can.
    """
    return service.login(conn, form.username, form.password, service.client_address(request))


@router.post("/logout", status_code=204, summary="Revoke the bearer token")
def logout(conn: Conn, _user: SignedIn, token: Annotated[str, Depends(service.oauth2_scheme)]) -> None:
    """The token stops working at once."""
    service.logout(conn, token)


@router.get("/me", response_model=User, summary="The logged-in user and their scope")
def me(user: SignedIn) -> User:
    """Who the token belongs to, and whether they must change their password before anything else."""
    return user


@router.post("/password", status_code=204, summary="Change your own password", responses=problems(403, 423, 429))
def change_password(conn: Conn, user: SignedIn, body: PasswordChange, request: Request) -> None:
    """Any signed-in user, also one who must change a generated or reset password first. The new one must
    pass the password policy (422 with the reason in Chinese and English); a wrong current password is 403
    and counts as a failed login toward the account's lockout (423 once locked)."""
    service.change_password(conn, user, body.current_password, body.new_password, service.client_address(request))


def _visible(conn: Conn, admin: User, level: str | None, code: str | None) -> bool:
    """True when a user of this scope lies within the administrator's scope."""
    if level is None or code is None:
        return False
    try:
        resolve(conn, admin, level, code)
    except HTTPException:
        return False
    return True


@router.get("/locks", response_model=list[AccountLock], summary="Accounts with failed logins in a row (admin)",
            responses=problems(403))
def list_locks(conn: Conn, user: Admin) -> list[dict]:
    """Users within the administrator's scope that are locked or failing, locked ones first."""
    return [r for r in service.locks(conn) if _visible(conn, user, r["scope_level"], r["scope_code"])]


@router.delete("/locks/{username}", status_code=204, summary="Unlock an account (admin)", responses=problems(403))
def unlock(username: Username, conn: Conn, user: Admin) -> None:
    """Lift the lock and forget the failures of a user within the administrator's scope; audited."""
    target = conn.execute("SELECT scope_level, scope_code FROM app_user WHERE username = %s", (username,)).fetchone()
    if target is None or not _visible(conn, user, target["scope_level"], target["scope_code"]):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such user in your scope")
    service.unlock(conn, user, username)
