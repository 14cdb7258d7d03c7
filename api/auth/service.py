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


_FAILURES = """
SELECT count(*) FILTER (WHERE username = %(user)s) AS by_user,
       count(*) FILTER (WHERE client_ip = %(ip)s) AS by_ip
FROM login_attempt
WHERE NOT succeeded AND at > now() - interval '1 minute' AND (username = %(user)s OR client_ip = %(ip)s)
"""


def _throttle(conn: psycopg.Connection, username: str, client_ip: str) -> None:
    limit = api_settings().login_attempts_per_minute
    row = conn.execute(_FAILURES, {"user": username, "ip": client_ip}).fetchone()
    if row["by_user"] >= limit or row["by_ip"] >= limit:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many failed logins; try again in a minute",
                            {"Retry-After": "60"})


def _record_attempt(conn: psycopg.Connection, username: str, client_ip: str, succeeded: bool) -> None:
    conn.execute("INSERT INTO login_attempt (username, client_ip, succeeded) VALUES (%s, %s, %s)",
                 (username[:128], client_ip, succeeded))
    conn.execute("INSERT INTO audit_log (username, action, target) VALUES (%s, %s, %s)",
                 (username[:128], "login" if succeeded else "login.failed", client_ip))
    conn.commit()  # a failed attempt must count even though the request then fails


def login(conn: psycopg.Connection, username: str, password: str, client_ip: str = "unknown") -> Token:
    """Check a username and password and issue a signed token; 401 on a mismatch, 429 when throttled."""
    _throttle(conn, username, client_ip)
    row = _load_user(conn, username)
    ok = verify_password(row["password_hash"] if row else _missing_user_hash(), password)
    if not row or not ok or row["disabled"]:
        _record_attempt(conn, username, client_ip, False)
        raise _UNAUTHORIZED
    _record_attempt(conn, username, client_ip, True)
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
    revoked = conn.execute("SELECT 1 FROM revoked_token WHERE jti = %s", (claims["jti"],)).fetchone()
    row = _load_user(conn, claims["sub"])
    if revoked or row is None or row["disabled"]:
        raise _UNAUTHORIZED
    return User.model_validate(row)


def logout(conn: psycopg.Connection, token: str) -> None:
    """Revoke a token until it would have expired anyway (and forget long-expired revocations)."""
    claims = jwt.decode(token, api_settings().signing_key(), algorithms=[_ALGORITHM])
    conn.execute("DELETE FROM revoked_token WHERE expires_at < now()")
    conn.execute("INSERT INTO revoked_token (jti, expires_at) VALUES (%s, to_timestamp(%s)) ON CONFLICT DO NOTHING",
                 (claims["jti"], claims["exp"]))
    conn.execute("INSERT INTO audit_log (username, action, target) VALUES (%s, 'logout', %s)",
                 (claims["sub"], claims["jti"]))
