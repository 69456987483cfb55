"""Roles, permissions and the one table that maps a role to what it may do.

Every HTTP route declares the :class:`Permission` it needs (``Depends(require(Permission.X))`` from
:mod:`radgate.web.security`); ``tests/test_auth_routes.py`` walks the app and fails on a route that declares
none, and checks every role against every route with :data:`ROLE_PERMISSIONS`. To add a route: pick (or add)
a permission here, grant it to the roles that need it below, declare it on the route.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from radgate.errors import Invalid

__all__ = ["ROLE_PERMISSIONS", "Permission", "Role", "parse_role", "parse_scopes", "permissions_for"]


class Role(enum.StrEnum):
    """Who a user is to radgate (brief, "Who uses it")."""

    RADIOLOGIST = "radiologist"
    ADMIN = "admin"  # clinical informaticist / PACS admin
    DIRECTOR = "director"  # imaging director
    DATA_SCIENTIST = "data_scientist"
    AUDITOR = "auditor"


class Permission(enum.StrEnum):
    """One thing a route or command lets a caller do. Values are the token scope names."""

    PAGES_VIEW = "pages.view"  # the signed-in home page and navigation (no patient data)
    API_DOCS = "api.docs"  # Swagger UI, ReDoc and the OpenAPI schema
    DICOMWEB_READ = "dicomweb.read"  # QIDO-RS and WADO-RS: patient data, every access audited
    DICOMWEB_STORE = "dicomweb.store"  # STOW-RS
    INGEST_READ = "ingest.read"  # rejections, series status (UIDs and reasons, no patient data)
    INGEST_MANAGE = "ingest.manage"  # expected counts and other ingest changes
    WORKLIST_READ = "worklist.read"  # the AI-ordered worklist and the review pages
    REVIEW_WRITE = "review.write"  # accept / modify / dismiss, final reads
    PATIENT_IDENTITY = "patient.identity"  # patient name and ID on the worklist and review pages
    DEPLOYMENTS_READ = "deployments.read"  # deployments, routing decisions, predictions
    DEPLOYMENTS_MANAGE = "deployments.manage"  # deployment modes, thresholds, policies, models
    VALIDATION_READ = "validation.read"  # validation and silent-trial reports
    MONITORING_READ = "monitoring.read"  # monthly dashboard, drift, alerts
    DATASET_EXPORT = "dataset.export"  # de-identified exports, annotation queues
    AUDIT_READ = "audit.read"  # the audit log
    USERS_MANAGE = "users.manage"  # users, roles and tokens


_EVERY_ROLE = {Permission.PAGES_VIEW, Permission.API_DOCS}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.RADIOLOGIST: frozenset(
        _EVERY_ROLE
        | {
            Permission.DICOMWEB_READ,
            Permission.WORKLIST_READ,
            Permission.REVIEW_WRITE,
            Permission.PATIENT_IDENTITY,
        }
    ),
    Role.ADMIN: frozenset(
        _EVERY_ROLE
        | {
            Permission.DICOMWEB_READ,
            Permission.DICOMWEB_STORE,
            Permission.INGEST_READ,
            Permission.INGEST_MANAGE,
            Permission.DEPLOYMENTS_READ,
            Permission.DEPLOYMENTS_MANAGE,
            Permission.MONITORING_READ,
            Permission.AUDIT_READ,
            Permission.USERS_MANAGE,
        }
    ),
    Role.DIRECTOR: frozenset(
        _EVERY_ROLE
        | {
            Permission.DEPLOYMENTS_READ,
            Permission.VALIDATION_READ,
            Permission.MONITORING_READ,
            Permission.WORKLIST_READ,
        }
    ),
    Role.DATA_SCIENTIST: frozenset(
        _EVERY_ROLE
        | {
            Permission.DICOMWEB_READ,
            Permission.DEPLOYMENTS_READ,
            Permission.VALIDATION_READ,
            Permission.MONITORING_READ,
            Permission.DATASET_EXPORT,
        }
    ),
    Role.AUDITOR: frozenset(_EVERY_ROLE | {Permission.AUDIT_READ}),
}


def permissions_for(role: Role) -> frozenset[Permission]:
    return ROLE_PERMISSIONS[role]


def parse_role(text: str) -> Role:
    try:
        return Role(text.strip().lower())
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise Invalid(f"Role {text!r} does not exist; use one of: {allowed}.") from None


def parse_scopes(values: Iterable[str]) -> frozenset[Permission]:
    """Token scopes (``dicomweb.read`` ...), each a :class:`Permission` value; commas split too."""
    out: set[Permission] = set()
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                out.add(Permission(part))
            except ValueError:
                allowed = ", ".join(p.value for p in Permission)
                raise Invalid(f"Scope {part!r} does not exist; use one or more of: {allowed}.") from None
    return frozenset(out)
