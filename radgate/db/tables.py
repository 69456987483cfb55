"""Every table module, imported so that ``Base.metadata`` is complete (for Alembic and the schema test).

Each domain keeps its ORM classes beside its code (``radgate/<domain>/tables.py``) on the shared
:class:`radgate.db.schema.Base`; its Alembic revision revises ``0001`` on a branch named after the domain,
and :meth:`radgate.db.Database.migrate` upgrades to all heads.
"""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

from radgate.db.schema import Base

TABLE_MODULES: tuple[str, ...] = (
    "radgate.db.schema",
    "radgate.models.tables",
    "radgate.routing.tables",
    "radgate.engine.tables",
    "radgate.results.tables",
    "radgate.validation.tables",
    "radgate.policy.tables",
    "radgate.monitoring.tables",
    "radgate.auth.tables",
    "radgate.audit.tables",
    "radgate.learning.tables",
    "radgate.worklist.tables",
)


def metadata() -> MetaData:
    for name in TABLE_MODULES:
        importlib.import_module(name)
    return Base.metadata
