"""Password hashing for platform users (Argon2id, via argon2-cffi)."""

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


@lru_cache
def _hasher() -> PasswordHasher:
    # OWASP's minimum for Argon2id: 19 MiB of memory, 2 iterations, 1 lane.
    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def hash_password(plain: str) -> str:
    """An Argon2id hash of the password, with its own salt."""
    return _hasher().hash(plain)


def verify_password(hashed: str, plain: str) -> bool:
    """True when the password matches the hash; False for a mismatch or a malformed hash."""
    try:
        return _hasher().verify(hashed, plain)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(hashed: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    return _hasher().check_needs_rehash(hashed)
