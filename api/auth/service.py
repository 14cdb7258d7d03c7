"""Password checks, token issue and verification, login throttling and account lockout.

Failed logins are held back two ways:

- per client address: more than `login_attempts_per_minute` failures from one address in a
  minute answer 429 to that address only;
- per account: `lockout_threshold` failures in a row lock that account for a time that grows
  with each further lock (`lockout_base_s` × `lockout_factor`ⁿ, at most `lockout_max_s`). While
  locked, every login to it answers 423 without the password being checked, so the answer says
  nothing about whether the password was right. The lock is audited; an administrator can lift
  it (`unlock`). A success ends the streak — unless it came while the lock holds (below), which
  leaves the lock to the others.

A lock anyone can set by typing a name is also a way to keep its owner out. So the lock does not
hold for an address the account logged in from successfully within `lockout_trusted_days`: there
the password is checked as usual (its failures still count). A guesser elsewhere locks the
account for everyone else, not its owner out of their usual place; an owner on a new address
waits, or asks an administrator.

The client address is the cockpit's browser when the cockpit vouches for it (`client_address`).
"""

import hmac
import ipaddress
import logging
import math
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import jwt
import psycopg
from fastapi import HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer

from api.auth import policy
from api.auth.models import Token, User
from api.settings import ApiSettings, api_settings
from core.security import hash_password, verify_password

log = logging.getLogger(__name__)

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token")
_ALGORITHM = "HS256"
_UNAUTHORIZED = HTTPException(
    status.HTTP_401_UNAUTHORIZED, "invalid or expired credentials", {"WWW-Authenticate": "Bearer"}
)
# The browser the cockpit logs in for, and the proof that the cockpit is the one saying so.
CLIENT_HEADER = "X-Cockpit-Client"
SECRET_HEADER = "X-Cockpit-Secret"
LOCKED_DETAIL = ("this account is locked after repeated failed logins; try again later "
                 "or ask an administrator to unlock it")


def client_address(request: Request) -> str:
    """The address a login is throttled by: the caller's, or the browser's when the cockpit vouches for it.

    Every login made through the cockpit reaches the API from the cockpit's server, so throttling
    by the peer address would let ten wrong passwords typed into the cockpit lock everybody out.
    The cockpit therefore names the browser in `X-Cockpit-Client` and proves it is the cockpit
    with `X-Cockpit-Secret`, a secret only it and the API hold (API_COCKPIT_SECRET, or one
    derived from the API's signing key). The header counts only with that secret, compared in
    constant time, and only when it holds an IP address: a browser calling the API directly does
    not know the secret, so whatever `X-Cockpit-Client` it sends is ignored (and logged) and it is
    throttled by its own address. `X-Forwarded-For` is deliberately not used: any client can set
    it, and a front proxy or the server itself may rewrite it.
    """
    peer = request.client.host if request.client else "unknown"
    claimed = request.headers.get(CLIENT_HEADER)
    if claimed is None:
        return peer
    secret = api_settings().cockpit_credential()
    offered = request.headers.get(SECRET_HEADER, "")
    if not secret or not hmac.compare_digest(offered.encode(), secret.encode()):
        log.warning("ignored %s from %s: it did not carry the cockpit's secret", CLIENT_HEADER, peer)
        return peer
    try:
        return str(ipaddress.ip_address(claimed.strip()))
    except ValueError:
        log.warning("ignored %s %r from the cockpit: not an IP address", CLIENT_HEADER, claimed[:64])
        return peer


@lru_cache
def _missing_user_hash() -> str:
    # Verified against when the user does not exist, so timing does not reveal usernames.
    return hash_password(secrets.token_hex(16))


def _load_user(conn: psycopg.Connection, username: str) -> dict | None:
    # A password older than the policy's maximum age must be changed like a generated one.
    return conn.execute(
        "SELECT username, display_name, role, scope_level, scope_code, password_hash, disabled, "
        "must_change_password OR (%(days)s > 0 AND password_set_at < now() - make_interval(days => %(days)s)) "
        "AS must_change_password FROM app_user WHERE username = %(user)s",
        {"user": username, "days": api_settings().password_max_age_days}
    ).fetchone()


_CLIENT_FAILURES = """
SELECT count(*) AS n FROM login_attempt
WHERE NOT succeeded AND client_ip = %s AND at > now() - interval '1 minute'
"""


def _throttle_client(conn: psycopg.Connection, client: str, settings: ApiSettings) -> None:
    """429 for this client address only, when it failed too often in the last minute."""
    if conn.execute(_CLIENT_FAILURES, (client,)).fetchone()["n"] >= settings.login_attempts_per_minute:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            "too many failed logins from your address; try again in a minute", {"Retry-After": "60"})


def _record(conn: psycopg.Connection, username: str, client: str, outcome: str, action: str) -> None:
    conn.execute("INSERT INTO login_attempt (username, client_ip, succeeded, outcome) VALUES (%s, %s, %s, %s)",
                 (username, client, outcome == "ok", outcome))
    conn.execute("INSERT INTO audit_log (username, action, target) VALUES (%s, %s, %s)", (username, action, client))
    conn.commit()  # a failed attempt must count even though the request then fails


def _trusted(conn: psycopg.Connection, username: str, client: str, settings: ApiSettings) -> bool:
    """True when the account logged in successfully from this address within the trusted days."""
    return conn.execute(
        "SELECT EXISTS (SELECT 1 FROM login_attempt WHERE succeeded AND username = %s AND client_ip = %s "
        "AND at > now() - make_interval(days => %s)) AS known",
        (username, client, settings.lockout_trusted_days)).fetchone()["known"]


def _locked(until: datetime, now: datetime) -> HTTPException:
    seconds = max(1, math.ceil((until - now).total_seconds()))
    return HTTPException(status.HTTP_423_LOCKED, LOCKED_DETAIL, {"Retry-After": str(seconds)})


def _count_failure(conn: psycopg.Connection, username: str, client: str, lock: dict | None, now: datetime,
                   settings: ApiSettings) -> None:
    """One more failure in the account's streak; lock it (for longer each time) past the threshold."""
    if lock is not None and lock["last_failure"] < now - timedelta(seconds=settings.lockout_forget_s):
        lock = None  # a quiet day forgets the streak
    failures = (lock["failures"] if lock else 0) + 1
    locks = lock["locks"] if lock else 0
    until = lock["locked_until"] if lock else None
    if failures >= settings.lockout_threshold:
        locks += 1
        seconds = settings.lockout_seconds(locks)
        until = now + timedelta(seconds=seconds)
        conn.execute("INSERT INTO audit_log (username, action, target, detail) VALUES (%s, 'login.locked', %s, "
                     "jsonb_build_object('failures', %s::int, 'lock', %s::int, 'seconds', %s::float8, "
                     "'until', %s::timestamptz))", (username, client, failures, locks, seconds, until))
        log.warning("login %r locked for %.0f s after %d failed attempts (last from %s)", username, seconds,
                    failures, client)
    conn.execute(
        """INSERT INTO login_lock (username, failures, locks, locked_until, last_failure)
           VALUES (%(user)s, %(failures)s, %(locks)s, %(until)s, %(now)s)
           ON CONFLICT (username) DO UPDATE SET failures = EXCLUDED.failures, locks = EXCLUDED.locks,
               locked_until = EXCLUDED.locked_until, last_failure = EXCLUDED.last_failure""",
        {"user": username, "failures": failures, "locks": locks, "until": until, "now": now})


def login(conn: psycopg.Connection, username: str, password: str, client: str = "unknown") -> Token:
    """Check a username and password and issue a signed token.

    401 on a mismatch, 429 when this client failed too often, 423 while the account is locked.
    """
    settings = api_settings()
    _throttle_client(conn, client, settings)
    # One login at a time per name, so concurrent failures count one by one.
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('login:' || %s))", (username,))
    now = conn.execute("SELECT now() AS now").fetchone()["now"]
    lock = conn.execute("SELECT * FROM login_lock WHERE username = %s", (username,)).fetchone()
    held = bool(lock and lock["locked_until"] and lock["locked_until"] > now)
    if held and not _trusted(conn, username, client, settings):
        _record(conn, username, client, "locked", "login.refused_locked")
        raise _locked(lock["locked_until"], now)
    row = _load_user(conn, username)
    ok = verify_password(row["password_hash"] if row else _missing_user_hash(), password)
    if not row or not ok or row["disabled"]:
        _count_failure(conn, username, client, lock, now, settings)
        _record(conn, username, client, "failed", "login.failed")
        raise _UNAUTHORIZED
    if not held:  # a success from a trusted address while locked leaves the lock to the others
        conn.execute("DELETE FROM login_lock WHERE username = %s", (username,))
    _record(conn, username, client, "ok", "login")
    ttl = timedelta(minutes=settings.token_ttl_minutes)
    issued = datetime.now(UTC)
    claims = {"sub": username, "iat": issued, "exp": issued + ttl, "jti": uuid.uuid4().hex}
    token = jwt.encode(claims, settings.signing_key(), algorithm=_ALGORITHM)
    return Token(access_token=token, expires_in=int(ttl.total_seconds()),
                 must_change_password=row["must_change_password"])


def change_password(conn: psycopg.Connection, user: User, current: str, new: str, client: str = "unknown") -> None:
    """The user's own new password (api/auth/policy.py), given the current one; clears must_change_password.

    A wrong current password answers 403 and counts as a failed login, toward this client's throttle
    (429) and the account's lockout (423, as at login): a stolen session cannot guess its way to the
    password. Audited, the password never.
    """
    settings = api_settings()
    _throttle_client(conn, client, settings)
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('login:' || %s))", (user.username,))
    now = conn.execute("SELECT now() AS now").fetchone()["now"]
    lock = conn.execute("SELECT * FROM login_lock WHERE username = %s", (user.username,)).fetchone()
    # No trusted address here: whoever holds the session may not be its owner.
    if lock and lock["locked_until"] and lock["locked_until"] > now:
        _record(conn, user.username, client, "locked", "password.refused_locked")
        raise _locked(lock["locked_until"], now)
    row = _load_user(conn, user.username)
    if row is None or not verify_password(row["password_hash"], current):
        _count_failure(conn, user.username, client, lock, now, settings)
        _record(conn, user.username, client, "failed", "password.failed")
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the current password is wrong")
    policy.enforce(new, user.username)
    if verify_password(row["password_hash"], new):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "新密码不能与当前密码相同 / the new password must differ from the current one")
    conn.execute("UPDATE app_user SET password_hash = %s, password_set_at = now(), must_change_password = false "
                 "WHERE username = %s", (hash_password(new), user.username))
    conn.execute("DELETE FROM login_lock WHERE username = %s", (user.username,))
    conn.execute("INSERT INTO audit_log (username, action, target) VALUES (%s, 'password.change', %s)",
                 (user.username, user.username))


def locks(conn: psycopg.Connection) -> list[dict]:
    """Accounts locked now or with failures in a row, with the user's scope when the name is a user."""
    return conn.execute(
        """SELECT l.username, l.failures, l.locks, l.locked_until, l.last_failure,
                  l.locked_until IS NOT NULL AND l.locked_until > now() AS locked, u.scope_level, u.scope_code
           FROM login_lock l LEFT JOIN app_user u ON u.username = l.username
           ORDER BY l.locked_until DESC NULLS LAST, l.username""").fetchall()


def unlock(conn: psycopg.Connection, admin: User, username: str) -> bool:
    """Lift the account's lock and forget its failures (audited); True when it was locked."""
    row = conn.execute("DELETE FROM login_lock WHERE username = %s RETURNING locked_until > now() AS locked",
                       (username,)).fetchone()
    was_locked = bool(row and row["locked"])
    conn.execute("INSERT INTO audit_log (username, action, target, detail) VALUES (%s, 'login.unlock', %s, "
                 "jsonb_build_object('was_locked', %s::boolean))", (admin.username, username, was_locked))
    return was_locked


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
