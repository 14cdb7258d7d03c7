"""Password hashing for platform users (Argon2id, via argon2-cffi)."""

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


@lru_cache
def _hasher() -> PasswordHasher:
    # OWASP's minimum for Argon2id: 19 MiB of memory, 2 iterations, 1 lane.
    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def hash_password(plain: str, *, salt: bytes | None = None) -> str:
    """An Argon2id hash of the password, with a random salt unless one is given (reproducible seeds)."""
    return _hasher().hash(plain, salt=salt)


def verify_password(hashed: str, plain: str) -> bool:
    """True when the password matches the hash; False for a mismatch or a malformed hash."""
    try:
        return _hasher().verify(hashed, plain)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(hashed: str) -> bool:
    """True when the hash was made with other parameters than today's, or is not an Argon2 hash at all."""
    try:
        return _hasher().check_needs_rehash(hashed)
    except InvalidHashError:
        return True
