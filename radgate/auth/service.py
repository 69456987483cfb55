"""The auth service: users, passwords, browser sessions and API tokens, every change audited.

The CLI (``radgate users`` / ``radgate tokens``) and the web layer (sign-in, the ``require`` dependency)
call these functions; each runs in one transaction together with its audit entry.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from radgate import audit
from radgate.auth.credentials import TOKEN_PREFIX, digest, new_secret, new_token
from radgate.auth.passwords import check_password_policy, hash_password, needs_rehash, verify_password
from radgate.auth.permissions import Permission, Role, parse_role, permissions_for
from radgate.auth.tables import ApiToken, User, WebSession
from radgate.clock import utcnow
from radgate.config import AuthSettings
from radgate.db import Database
from radgate.errors import Conflict, Invalid, NotFound, Unauthorized

__all__ = [
    "Principal",
    "SignIn",
    "TokenInfo",
    "UserInfo",
    "add_user",
    "count_users",
    "create_token",
    "disable_user",
    "enable_user",
    "list_tokens",
    "list_users",
    "principal_from_session",
    "principal_from_token",
    "reset_password",
    "revoke_token",
    "set_role",
    "sign_in",
    "sign_out",
]

log = logging.getLogger(__name__)

SIGN_IN_FAILED = "Unknown user name or wrong password, or the account is locked or disabled."


@dataclass(frozen=True)
class UserInfo:
    id: int
    username: str
    role: Role
    disabled: bool
    has_password: bool
    locked_until: datetime | None
    created_at: datetime
    last_sign_in_at: datetime | None

    @classmethod
    def of(cls, u: User) -> UserInfo:
        return cls(
            u.id,
            u.username,
            Role(u.role),
            u.disabled,
            u.password_hash is not None,
            u.locked_until,
            u.created_at,
            u.last_sign_in_at,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "username": self.username,
            "role": self.role.value,
            "disabled": self.disabled,
            "has_password": self.has_password,
            "locked_until": self.locked_until.isoformat() if self.locked_until else None,
            "created_at": self.created_at.isoformat(),
            "last_sign_in_at": self.last_sign_in_at.isoformat() if self.last_sign_in_at else None,
        }


@dataclass(frozen=True)
class TokenInfo:
    id: int
    username: str
    name: str | None
    prefix: str
    scopes: tuple[Permission, ...]  # empty: everything the user's role may do
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "user": self.username,
            "name": self.name,
            "prefix": self.prefix,
            "scopes": [s.value for s in self.scopes],
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass(frozen=True)
class Principal:
    """Who is calling, and what they may do (the role's permissions, narrowed by a token's scopes)."""

    user_id: int
    username: str
    role: Role
    permissions: frozenset[Permission]
    via: str  # "session" or "token"
    session_id: str | None = None
    csrf_token: str | None = None
    token_id: int | None = None

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return self.username if self.token_id is None else f"{self.username}/token:{self.token_id}"

    def may(self, permission: Permission) -> bool:
        return permission in self.permissions


@dataclass(frozen=True)
class SignIn:
    cookie: str  # the session cookie's value (only its SHA-256 is stored)
    csrf_token: str
    user: UserInfo


# ------------------------------------------------------------------------------------------------ users


def _username(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 64 or any(c.isspace() or c in "/:" for c in name):
        raise Invalid(f"User name {name!r} must be 1 to 64 characters without spaces, '/' or ':'.")
    return name


def _user(s: Session, username: str) -> User:
    user = s.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(f"No user {username!r}; `radgate users list` shows the users there are.")
    return user


def count_users(db: Database) -> int:
    with db.session() as s:
        return len(s.scalars(select(User.id)).all())


def add_user(
    db: Database, username: str, role: Role | str, password: str | None, settings: AuthSettings, actor: str
) -> UserInfo:
    username = _username(username)
    role = parse_role(role) if isinstance(role, str) else role
    if password is not None:
        check_password_policy(password, settings.min_password_length)
    with db.session() as s:
        if s.scalars(select(User).where(User.username == username)).first() is not None:
            raise Conflict(f"User {username!r} exists already; `radgate users set-role` changes its role.")
        now = utcnow()
        user = User(
            username=username,
            role=role.value,
            password_hash=hash_password(password) if password is not None else None,
            disabled=False,
            failed_logins=0,
            created_at=now,
            password_changed_at=now if password is not None else None,
        )
        s.add(user)
        s.flush()
        audit.record(s, actor, "user.add", username, {"role": role.value, "password": password is not None})
        return UserInfo.of(user)


def list_users(db: Database) -> list[UserInfo]:
    with db.session() as s:
        return [UserInfo.of(u) for u in s.scalars(select(User).order_by(User.username))]


def set_role(db: Database, username: str, role: Role | str, actor: str) -> UserInfo:
    role = parse_role(role) if isinstance(role, str) else role
    with db.session() as s:
        user = _user(s, username)
        old = user.role
        user.role = role.value
        audit.record(s, actor, "user.set_role", username, {"from": old, "to": role.value})
        return UserInfo.of(user)


def _end_sessions(s: Session, user_id: int) -> int:
    result = s.execute(
        update(WebSession)
        .where(WebSession.user_id == user_id, WebSession.ended_at.is_(None))
        .values(ended_at=utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def disable_user(db: Database, username: str, actor: str) -> UserInfo:
    """Disable: no sign-in, no token of the user works, open sessions end."""
    with db.session() as s:
        user = _user(s, username)
        user.disabled = True
        ended = _end_sessions(s, user.id)
        audit.record(s, actor, "user.disable", username, {"sessions_ended": ended})
        return UserInfo.of(user)


def enable_user(db: Database, username: str, actor: str) -> UserInfo:
    with db.session() as s:
        user = _user(s, username)
        user.disabled = False
        user.failed_logins = 0
        user.locked_until = None
        audit.record(s, actor, "user.enable", username)
        return UserInfo.of(user)


def reset_password(
    db: Database, username: str, password: str, settings: AuthSettings, actor: str
) -> UserInfo:
    """Set a new password; clears a lock-out and ends the user's open sessions."""
    check_password_policy(password, settings.min_password_length)
    with db.session() as s:
        user = _user(s, username)
        user.password_hash = hash_password(password)
        user.password_changed_at = utcnow()
        user.failed_logins = 0
        user.locked_until = None
        ended = _end_sessions(s, user.id)
        audit.record(s, actor, "user.reset_password", username, {"sessions_ended": ended})
        return UserInfo.of(user)


# --------------------------------------------------------------------------------------------- sign-in


def sign_in(
    db: Database, username: str, password: str, settings: AuthSettings, client: str | None = None
) -> SignIn:
    """Check a password and open a browser session, or raise :class:`Unauthorized` (one message for every
    cause, so a stranger learns nothing; the audit log records the real one). Failures count towards the
    lock-out; a locked account refuses even the right password until ``auth.lockout_minutes`` pass."""
    now = utcnow()
    username = username.strip()
    with db.session() as s:
        user = s.scalars(select(User).where(User.username == username)).first() if username else None
        matches = verify_password(user.password_hash if user else None, password)
        reason = None
        if user is None:
            reason = "unknown user"
        elif user.disabled:
            reason = "disabled"
        elif user.locked_until is not None and user.locked_until > now:
            reason = "locked"
        elif not matches:
            reason = "wrong password" if user.password_hash else "no password set"
            user.failed_logins += 1
            if user.failed_logins >= settings.lockout_attempts:
                user.locked_until = now + timedelta(minutes=settings.lockout_minutes)
                user.failed_logins = 0
                audit.record(s, "system", "auth.lock", username, {"minutes": settings.lockout_minutes})
                log.warning("Account locked after %d failed sign-ins", settings.lockout_attempts)
        if reason is not None:
            audit.record(
                s,
                username or "anonymous",
                "auth.sign_in_failed",
                username,
                {"reason": reason, "client": client},
            )
        else:
            assert user is not None
            if user.password_hash and needs_rehash(user.password_hash):
                user.password_hash = hash_password(password)
            user.failed_logins = 0
            user.locked_until = None
            user.last_sign_in_at = now
            cookie, csrf = new_secret(), new_secret()
            s.add(
                WebSession(
                    id=digest(cookie),
                    user_id=user.id,
                    csrf_token=csrf,
                    created_at=now,
                    last_seen_at=now,
                    client=(client or "")[:64] or None,
                )
            )
            audit.record(s, username, "auth.sign_in", username, {"client": client})
            return SignIn(cookie, csrf, UserInfo.of(user))
    raise Unauthorized(SIGN_IN_FAILED)


def sign_out(db: Database, cookie: str) -> bool:
    with db.session() as s:
        session = s.get(WebSession, digest(cookie))
        if session is None or session.ended_at is not None:
            return False
        session.ended_at = utcnow()
        user = s.get(User, session.user_id)
        audit.record(
            s, user.username if user else "unknown", "auth.sign_out", user.username if user else None
        )
        return True


def principal_from_session(db: Database, cookie: str, settings: AuthSettings) -> Principal | None:
    """The signed-in user of a session cookie, or None when it is unknown, ended, idle too long or too old."""
    now = utcnow()
    with db.session() as s:
        session = s.get(WebSession, digest(cookie))
        if session is None or session.ended_at is not None:
            return None
        user = s.get(User, session.user_id)
        idle = timedelta(minutes=settings.session_idle_minutes)
        too_old = now - session.created_at > timedelta(hours=settings.session_max_hours)
        if user is None or user.disabled or now - session.last_seen_at > idle or too_old:
            session.ended_at = now
            reason = "idle timeout" if not too_old else "maximum age"
            if user is None or user.disabled:
                reason = "user disabled"
            audit.record(
                s, user.username if user else "unknown", "auth.session_expired", None, {"reason": reason}
            )
            return None
        if now - session.last_seen_at > min(timedelta(seconds=30), idle / 4):
            session.last_seen_at = now
        role = Role(user.role)
        return Principal(
            user.id,
            user.username,
            role,
            permissions_for(role),
            "session",
            session_id=session.id,
            csrf_token=session.csrf_token,
        )


# ---------------------------------------------------------------------------------------------- tokens


def _token_info(t: ApiToken, username: str) -> TokenInfo:
    scopes = tuple(sorted((Permission(v) for v in t.scopes.split()), key=lambda p: p.value))
    return TokenInfo(
        t.id, username, t.name, t.prefix, scopes, t.created_at, t.expires_at, t.last_used_at, t.revoked_at
    )


def create_token(
    db: Database,
    username: str,
    scopes: Iterable[Permission],
    actor: str,
    name: str | None = None,
    expires_days: float | None = None,
) -> tuple[TokenInfo, str]:
    """A new API token for ``username``; returns its info and the secret, which is shown this once."""
    scopes = frozenset(scopes)
    if expires_days is not None and expires_days <= 0:
        raise Invalid(f"--expires-days is {expires_days}; give a positive number of days.")
    with db.session() as s:
        user = _user(s, username)
        allowed = permissions_for(Role(user.role))
        beyond = sorted(p.value for p in scopes - allowed)
        if beyond:
            raise Invalid(
                f"Role {user.role} of {username!r} does not grant {', '.join(beyond)}; a token's scopes must "
                f"lie within the role ({', '.join(sorted(p.value for p in allowed))})."
            )
        secret = new_token()
        now = utcnow()
        token = ApiToken(
            user_id=user.id,
            name=name,
            token_sha256=digest(secret),
            prefix=secret[: len(TOKEN_PREFIX) + 6],
            scopes=" ".join(sorted(p.value for p in scopes)),
            created_at=now,
            expires_at=now + timedelta(days=expires_days) if expires_days is not None else None,
        )
        s.add(token)
        s.flush()
        audit.record(
            s,
            actor,
            "token.create",
            username,
            {
                "token_id": token.id,
                "name": name,
                "scopes": sorted(p.value for p in scopes),
                "expires_days": expires_days,
            },
        )
        return _token_info(token, username), secret


def list_tokens(db: Database, username: str | None = None, include_revoked: bool = True) -> list[TokenInfo]:
    with db.session() as s:
        query = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id)
        if username is not None:
            query = query.where(User.id == _user(s, username).id)
        if not include_revoked:
            query = query.where(ApiToken.revoked_at.is_(None))
        return [_token_info(t, name) for t, name in s.execute(query).all()]


def revoke_token(db: Database, token_id: int, actor: str) -> TokenInfo:
    with db.session() as s:
        token = s.get(ApiToken, token_id)
        if token is None:
            raise NotFound(f"No token with id {token_id}; `radgate tokens list` shows them.")
        user = s.get(User, token.user_id)
        username = user.username if user else "?"
        if token.revoked_at is None:
            token.revoked_at = utcnow()
            audit.record(s, actor, "token.revoke", username, {"token_id": token_id})
        return _token_info(token, username)


def principal_from_token(db: Database, secret: str) -> Principal | None:
    """The caller a bearer token stands for, or None when unknown, revoked, expired or its user disabled."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    now = utcnow()
    with db.session() as s:
        token = s.scalars(select(ApiToken).where(ApiToken.token_sha256 == digest(secret))).first()
        if token is None or token.revoked_at is not None:
            return None
        if token.expires_at is not None and token.expires_at <= now:
            return None
        user = s.get(User, token.user_id)
        if user is None or user.disabled:
            return None
        stale = token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1)
        role = Role(user.role)
        allowed = permissions_for(role)
        scopes = frozenset(Permission(v) for v in token.scopes.split())
        principal = Principal(
            user.id, user.username, role, allowed & scopes if scopes else allowed, "token", token_id=token.id
        )
    if stale:
        _touch_token(db, principal.token_id, now)
    return principal


def _touch_token(db: Database, token_id: int | None, now: datetime) -> None:
    """Record when a token was last used: best effort, at most once a minute. A database that cannot be
    written (a full disk) must not turn a valid token into a failed request."""
    try:
        with db.session() as s:
            token = s.get(ApiToken, token_id)
            if token is not None:
                token.last_used_at = now
    except SQLAlchemyError as exc:
        log.warning("token %s: last use not recorded (%s)", token_id, type(exc).__name__)
