"""Users as the API sees them, the login form, and account locks."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Form
from pydantic import BaseModel, Field

from api.inputs import DbText
from core.scope import Level

Role = Literal["admin", "manager", "operations", "viewer"]


class User(BaseModel):
    """An authenticated user and the scope that bounds everything they see."""

    username: str
    display_name: str
    role: Role
    scope_level: Level
    scope_code: str
    must_change_password: bool = Field(False, description="a generated, reset or expired password: every route "
                                                          "but /auth/me, /auth/password and /auth/logout answers "
                                                          "403 until the user changes it")


class Token(BaseModel):
    """An OAuth2 bearer token."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int
    must_change_password: bool = False


class PasswordChange(BaseModel):
    """A user's own new password, with the current one (the password policy applies)."""

    current_password: Annotated[DbText, Field(max_length=1024)]
    new_password: Annotated[DbText, Field(min_length=1, max_length=1024)]


class LoginForm:
    """The OAuth2 password-flow form: a user name and a password (other OAuth2 fields are ignored)."""

    def __init__(
        self,
        username: Annotated[DbText, Form(min_length=1, max_length=128)],
        password: Annotated[DbText, Form(max_length=1024)],
        grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
    ) -> None:
        self.username = username
        self.password = password
        self.grant_type = grant_type


class AccountLock(BaseModel):
    """A login name with failed logins in a row, and its lock if it has one."""

    username: str
    failures: int
    locks: int
    locked: bool
    locked_until: datetime | None
    last_failure: datetime
