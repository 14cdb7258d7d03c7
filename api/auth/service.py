"""Password checks, token issue and token verification."""

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import jwt
import psycopg
from fastapi import HTTPException, status
from fastapi.security import OAuth2PasswordBearer

from api.auth.models import Token, User
from api.settings import api_settings
from core.security import hash_password, verify_password

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token")
_ALGORITHM = "HS256"
_UNAUTHORIZED = HTTPException(
    status.HTTP_401_UNAUTHORIZED, "invalid or expired credentials", {"WWW-Authenticate": "Bearer"}
)


@lru_cache
def _missing_user_hash() -> str:
    # Verified against when the user does not exist, so timing does not reveal usernames.
    return hash_password(secrets.token_hex(16))


def _load_user(conn: psycopg.Connection, username: str) -> dict | None:
    return conn.execute(
        "SELECT username, display_name, role, scope_level, scope_code, password_hash, disabled "
        "FROM app_user WHERE username = %s", (username,)
    ).fetchone()


def login(conn: psycopg.Connection, username: str, password: str) -> Token:
    """Check a username and password and issue a signed token; 401 on any mismatch."""
    row = _load_user(conn, username)
    ok = verify_password(row["password_hash"] if row else _missing_user_hash(), password)
    if not row or not ok or row["disabled"]:
        raise _UNAUTHORIZED
    settings = api_settings()
    now = datetime.now(UTC)
    ttl = timedelta(minutes=settings.token_ttl_minutes)
    claims = {"sub": username, "iat": now, "exp": now + ttl, "jti": uuid.uuid4().hex}
    token = jwt.encode(claims, settings.signing_key(), algorithm=_ALGORITHM)
    return Token(access_token=token, expires_in=int(ttl.total_seconds()))


def authenticate_token(conn: psycopg.Connection, token: str) -> User:
    """The user a valid token names; 401 for a bad, expired or disabled one."""
    try:
        claims = jwt.decode(token, api_settings().signing_key(), algorithms=[_ALGORITHM],
                            options={"require": ["sub", "exp", "jti"]})
    except jwt.PyJWTError:
        raise _UNAUTHORIZED from None
    row = _load_user(conn, claims["sub"])
    if row is None or row["disabled"]:
        raise _UNAUTHORIZED
    return User.model_validate(row)
