"""Display links' secrets and tokens: a wall screen trades its link's secret for a short-lived token
of a read-only principal, and that principal never writes.

- The secret (`dl_` and 32 random bytes) is shown once, when an administrator issues the link; the
  database keeps its SHA-256, as it keeps a vendor key's, and the exchange finds the link by it.
- `exchange` answers a token valid for `TOKEN_TTL_S` of a `DisplayUser`: role `display`, the
  link's scope as its scope. The screen exchanges the secret again before the token runs out.
- Every request with such a token looks the link up (`reader`): once the link is revoked, the
  exchange and every token already issued answer 401 at once, not when they expire.
- `reader` refuses any method but GET and HEAD with 403, whatever the route: it is called from
  `api.deps.signed_in`, through which every route that takes a bearer token authenticates, so a
  route added later is covered without a word of its own. A display principal's role is in no
  route's allowed roles, so the administration answers it 403 as well.

Display tokens are signed with a key of their own, derived from the API's signing key, and carry
`kid: display` in their header: a user's token is never taken for one, nor one for a user's.
"""

import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import psycopg
from fastapi import HTTPException, status

from api.auth.display_models import DisplayLinkView, DisplayToken, DisplayUser
from api.scopes.access import resolve
from api.settings import api_settings

KEY_PREFIX = "dl_"
KEY_MAX_LENGTH = 256
TOKEN_TTL_S = 15 * 60  # the screen renews at half of it; a revocation does not wait for it
READ_METHODS = frozenset({"GET", "HEAD"})
_KID = "display"
_ALGORITHM = "HS256"
REVOKED = "this display link has been revoked"  # the wall screen tells its viewers so
UNKNOWN = "no such display link"


def _refused(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, {"WWW-Authenticate": "Bearer"})


def key_hash(key: str) -> str:
    """The stored form of a link's secret: its SHA-256 (the secret is 32 random bytes)."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh secret for a link."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def wall_path(key: str) -> str:
    """The cockpit path that opens the wall with this secret: in the fragment, so that neither the
    cockpit's server nor a proxy in front of it ever receives (or logs) it."""
    return f"/wall#key={key}"


def _signing_key() -> bytes:
    return hmac.new(api_settings().signing_key().encode(), b"display-link-token", hashlib.sha256).digest()


def is_display_token(token: str) -> bool:
    """True when the bearer token says it is a display token (its signature is checked by `reader`)."""
    try:
        return jwt.get_unverified_header(token).get("kid") == _KID
    except jwt.PyJWTError:
        return False


def _principal(link: dict) -> DisplayUser:
    return DisplayUser(username=f"display:{link['id']}", display_name=link["label"], scope_level=link["scope_level"],
                       scope_code=link["scope_code"], link_id=link["id"])


_LINK_COLUMNS = "SELECT id, label, scope_level, scope_code, pages, rotate_s, revoked_at FROM display_link"
_LINK_BY_ID = _LINK_COLUMNS + " WHERE id = %s"
_LINK_BY_HASH = _LINK_COLUMNS + " WHERE secret_hash = %s"


def reader(conn: psycopg.Connection, token: str, method: str) -> DisplayUser:
    """The display principal of a valid token of a live link; 401 otherwise, and 403 for any method but
    GET and HEAD."""
    try:
        claims = jwt.decode(token, _signing_key(), algorithms=[_ALGORITHM], options={"require": ["link", "exp"]})
    except jwt.PyJWTError:
        raise _refused("invalid or expired credentials") from None
    link = conn.execute(_LINK_BY_ID, (claims["link"],)).fetchone() if isinstance(claims["link"], int) else None
    if link is None:
        raise _refused(UNKNOWN)
    if link["revoked_at"] is not None:
        raise _refused(REVOKED)
    if method not in READ_METHODS:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"a display link only reads: {method} is refused to its token")
    return _principal(link)


def exchange(conn: psycopg.Connection, key: str | None) -> DisplayToken:
    """A token for the link whose secret this is; 401 for a missing, unknown, garbled or revoked one."""
    if not key or len(key) > KEY_MAX_LENGTH:
        raise _refused(UNKNOWN)
    link = conn.execute(_LINK_BY_HASH, (key_hash(key),)).fetchone()
    if link is None:
        raise _refused(UNKNOWN)
    if link["revoked_at"] is not None:
        raise _refused(REVOKED)
    conn.execute("UPDATE display_link SET last_used_at = now() WHERE id = %s", (link["id"],))
    user = _principal(link)
    try:
        scope_name = resolve(conn, user, link["scope_level"], link["scope_code"]).name
    except HTTPException:  # the scope left the registry since: the pages will say so
        scope_name = None
    issued = datetime.now(UTC)
    claims = {"sub": user.username, "link": link["id"], "iat": issued, "exp": issued + timedelta(seconds=TOKEN_TTL_S),
              "jti": uuid.uuid4().hex}
    token = jwt.encode(claims, _signing_key(), algorithm=_ALGORITHM, headers={"kid": _KID})
    view = DisplayLinkView(id=link["id"], label=link["label"], scope_level=link["scope_level"],
                           scope_code=link["scope_code"], scope_name=scope_name, pages=link["pages"],
                           rotate_s=link["rotate_s"])
    return DisplayToken(access_token=token, expires_in=TOKEN_TTL_S, user=user, link=view)
