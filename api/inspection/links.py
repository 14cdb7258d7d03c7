"""Signed links to stills: how a browser shows a picture it may see without carrying a token.

An `<img>` cannot send the user's bearer token, and a still must not be readable by anyone who
guesses its number. So a listing the user is allowed to read (the wall, a classroom) carries, for
each still, a link signed with a key derived from the API's signing key: the still's id, its size
(the wall's small copy or the still itself) and an expiry, HMAC-SHA256'd. The image route checks
the signature and the expiry, nothing else; the user's scope was checked when the link was made.

The expiry is rounded up to the next `BUCKET_S` and lies between one and two buckets ahead, so
every listing within a bucket hands out the same link for a still: the browser's cache (keyed
by the URL) serves a picture it has already fetched, and a live refresh re-sends no image.
"""

import hashlib
import hmac
from datetime import datetime
from functools import lru_cache
from typing import Literal

from api.settings import api_settings

BUCKET_S = 300  # links live between 5 and 10 minutes
Size = Literal["thumb", "full"]


@lru_cache
def _key(signing_key: str) -> bytes:
    return hmac.new(signing_key.encode(), b"snapshot links", hashlib.sha256).digest()


def _signature(snapshot_id: int, size: str, expires: int) -> str:
    key = _key(api_settings().signing_key())
    return hmac.new(key, f"{snapshot_id}:{size}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def expiry(now: datetime) -> int:
    """When links made now expire (epoch seconds): the end of the bucket after this one."""
    return (int(now.timestamp()) // BUCKET_S + 2) * BUCKET_S


def link(snapshot_id: int, size: Size, now: datetime) -> str:
    """The API path of a still, signed until `expiry(now)`."""
    expires = expiry(now)
    return f"/api/v1/snapshots/{snapshot_id}/image?size={size}&exp={expires}&sig={_signature(snapshot_id, size, expires)}"


def valid(snapshot_id: int, size: str, expires: int, signature: str, now: datetime) -> bool:
    """True for a signature this API made for this still and size, not yet expired."""
    if expires < now.timestamp():
        return False
    return hmac.compare_digest(_signature(snapshot_id, size, expires), signature)
