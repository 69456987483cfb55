"""Password hashing with argon2id (argon2-cffi's RFC 9106 low-memory profile defaults)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from radgate.errors import Invalid

__all__ = ["check_password_policy", "hash_password", "needs_rehash", "verify_password"]

_hasher = PasswordHasher()
# Verified when the user name is unknown, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("radgate-no-such-user")


def check_password_policy(password: str, min_length: int) -> None:
    if len(password) < min_length:
        raise Invalid(
            f"The password has {len(password)} characters; use at least {min_length} "
            "(auth.min_password_length)."
        )
    if password.strip() != password or "\n" in password:
        raise Invalid("The password starts or ends with white space or holds a line break; choose another.")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; constant work also for a user without a password."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
