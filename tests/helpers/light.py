"""Checks of :class:`radgate.db.light.ReadQuery` declarations against the SQLAlchemy tables (declared once)."""

from __future__ import annotations

import importlib
import pkgutil

from sqlalchemy import BigInteger, Boolean, Integer, MetaData, String, Text

from radgate.clock import UTCDateTime
from radgate.db.light import ColumnKind, ReadQuery
from radgate.db.types import JSONText

__all__ = ["declared_queries", "mismatches"]

#: The SQLAlchemy column types each kind reads (a column's type must be an instance of one of them).
KIND_TYPES: dict[ColumnKind, tuple[type, ...]] = {
    ColumnKind.TEXT: (String, Text),
    ColumnKind.INTEGER: (Integer, BigInteger),
    ColumnKind.BOOLEAN: (Boolean,),
    ColumnKind.UTC_DATETIME: (UTCDateTime,),
    ColumnKind.JSON_TEXT: (JSONText,),
}


def declared_queries() -> dict[str, ReadQuery]:
    """Every module-level ReadQuery of radgate.services, by ``module.NAME``."""
    import radgate.services

    found: dict[str, ReadQuery] = {}
    for info in pkgutil.iter_modules(radgate.services.__path__):
        module = importlib.import_module(f"radgate.services.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, ReadQuery):
                found[f"{module.__name__}.{name}"] = value
    return found


def mismatches(query: ReadQuery, metadata: MetaData) -> list[str]:
    """What in ``query`` the tables of ``metadata`` do not have (empty: it reads what the ORM declares)."""
    table = metadata.tables.get(query.table)
    if table is None:
        return [f"no table {query.table!r}"]
    problems = []
    for name, kind in query.columns:
        column = table.c.get(name)
        if column is None:
            problems.append(f"{query.table}.{name}: no such column")
        elif not isinstance(column.type, KIND_TYPES[kind]):
            problems.append(f"{query.table}.{name}: {type(column.type).__name__} is not read as {kind.name}")
    for name, _ in query.order_by:
        if name not in table.c:
            problems.append(f"{query.table}.{name} (ORDER BY): no such column")
    return problems
