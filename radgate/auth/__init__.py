"""Users, roles and permissions; passwords (argon2id), browser sessions and API tokens.

The permission table is :data:`radgate.auth.permissions.ROLE_PERMISSIONS`; the web layer enforces it with
``Depends(require(Permission.X))`` (:mod:`radgate.web.security`); the service is :mod:`radgate.auth.service`.
"""

from radgate.auth.permissions import (
    ROLE_PERMISSIONS,
    Permission,
    Role,
    parse_role,
    parse_scopes,
    permissions_for,
)
from radgate.auth.service import Principal, SignIn, TokenInfo, UserInfo

__all__ = [
    "ROLE_PERMISSIONS",
    "Permission",
    "Principal",
    "Role",
    "SignIn",
    "TokenInfo",
    "UserInfo",
    "parse_role",
    "parse_scopes",
    "permissions_for",
]
