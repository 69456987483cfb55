"""Random secrets (API tokens, session cookies, CSRF tokens) and the digests stored in their place."""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["TOKEN_PREFIX", "digest", "new_secret", "new_token", "same"]

TOKEN_PREFIX = "rgt_"


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def new_token() -> str:
    """An API token: ``rgt_`` and 256 random bits, URL-safe (fits an ``Authorization: Bearer`` header)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """SHA-256 of a high-entropy secret: what the database keeps (a leaked table reveals no token)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
