"""Column types shared by the domains' tables.

:class:`JSONText` is a JSON document the code reads and writes as a ``str`` (``json.dumps`` / ``json.loads``,
as every table did before): ``jsonb`` on PostgreSQL (validated on write, indexable, queryable with ``->``),
``TEXT`` on SQLite. PostgreSQL normalises a ``jsonb`` value (key order, whitespace), so the text read back
equals the text written as JSON, not byte for byte: nothing may hash it (the audit chain keeps ``TEXT``).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Dialect, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["JSONText"]


class JSONText(TypeDecorator[str]):
    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB(none_as_null=True))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or dialect.name != "postgresql":
            return value
        return json.loads(value) if isinstance(value, str) else value

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None or dialect.name != "postgresql":
            return value
        return json.dumps(value)
