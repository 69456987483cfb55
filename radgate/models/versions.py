"""Model versions (Semantic Versioning 2.0.0, https://semver.org, without build metadata): the pattern the
manifest checks and the order the registry lists versions in.

Standard library only: ``radgate models list`` orders the registry's rows without the manifest's schema.
"""

from __future__ import annotations

import re

__all__ = ["VERSION_RE", "version_key"]

VERSION_RE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$")


def version_key(version: str) -> tuple[int, int, int, int, str]:
    """A sort key: by major, minor, patch; a pre-release before its release (SemVer 2.0.0, item 11).
    A version the pattern does not match sorts before every valid one."""
    match = VERSION_RE.match(version)
    if not match:
        return (0, 0, 0, 0, version)
    major, minor, patch, pre = match.groups()
    return (int(major), int(minor), int(patch), 0 if pre else 1, pre or "")
