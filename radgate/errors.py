"""One error root for radgate: every user-facing failure is a :class:`RadgateError` of one kind.

The kind decides how the failure is shown, once for each surface: the HTTP API maps it to its status code
and the one JSON error shape (:mod:`radgate.web.errors`), the CLI to one red line and an exit code
(:mod:`radgate.cli.app`). A message names the thing, the value received, what was expected and the fix.
"""

from __future__ import annotations

import enum

__all__ = ["Conflict", "ErrorKind", "Forbidden", "Invalid", "NotFound", "RadgateError", "Unauthorized"]


class ErrorKind(enum.Enum):
    """What went wrong, in the terms both surfaces understand (value: the HTTP status)."""

    INVALID = 400
    UNAUTHORIZED = 401
    FORBIDDEN = 403
    NOT_FOUND = 404
    CONFLICT = 409

    @property
    def exit_code(self) -> int:
        """The CLI's exit code: 2 for a bad argument or value (as Click does for usage errors), else 1."""
        return 2 if self is ErrorKind.INVALID else 1


class RadgateError(Exception):
    """The root of radgate's own errors; ``kind`` says how to show it."""

    kind: ErrorKind = ErrorKind.INVALID

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def status(self) -> int:
        return self.kind.value


class Invalid(RadgateError):  # noqa: N818 - kinds, named as the HTTP API names them
    """A value is not what was expected (the message names the value and what is allowed)."""

    kind = ErrorKind.INVALID


class NotFound(RadgateError, LookupError):  # noqa: N818 - kinds, named as the HTTP API names them
    """The named thing does not exist (the message names it and how to list what does)."""

    kind = ErrorKind.NOT_FOUND


class Conflict(RadgateError):  # noqa: N818 - kinds, named as the HTTP API names them
    """The request contradicts the current state (already exists, not ready, changed meanwhile)."""

    kind = ErrorKind.CONFLICT


class Unauthorized(RadgateError):  # noqa: N818 - kinds, named as the HTTP API names them
    """No valid credentials were given."""

    kind = ErrorKind.UNAUTHORIZED


class Forbidden(RadgateError):  # noqa: N818 - kinds, named as the HTTP API names them
    """The credentials are valid but lack the permission the action needs."""

    kind = ErrorKind.FORBIDDEN
