"""The migration scripts' revision graph, read without importing Alembic, SQLAlchemy or the scripts.

Every command checks that the database's ``alembic_version`` holds exactly :func:`head_versions` before it
runs (:mod:`radgate.db.datadir`); loading Alembic for that took longer than most commands. Each script's
header (the statements above its first ``def``: ``revision``, ``down_revision``, ``depends_on``) is parsed
with :mod:`ast`, once per process. ``tests/test_db_heads.py`` checks the graph against Alembic's own answer.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "MIGRATIONS",
    "ScriptHeader",
    "head_versions",
    "script_dependencies",
    "script_headers",
    "script_heads",
    "script_revisions",
]

MIGRATIONS = Path(__file__).with_name("migrations")

_FIRST_DEF = re.compile(r"^(?:async\s+def|def|class|@)\b", re.MULTILINE)


@dataclass(frozen=True)
class ScriptHeader:
    """What one migration script states about its place in the graph."""

    revision: str
    down_revisions: frozenset[str]
    depends_on: frozenset[str]


def _names(value: Any) -> frozenset[str] | None:
    """A revision list as Alembic accepts it (None, a string, or a tuple/list of strings); None otherwise."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset((value,))
    if isinstance(value, tuple | list) and all(isinstance(v, str) for v in value):
        return frozenset(value)
    return None


def _header(source: str) -> ScriptHeader | None:
    """The header of one script; None when it does not state its revisions as literals."""
    first = _FIRST_DEF.search(source)
    try:
        body = ast.parse(source[: first.start()] if first else source).body
    except SyntaxError:  # a statement running into the first def: read the whole file
        body = ast.parse(source).body
    values: dict[str, Any] = {}
    for node in body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision", "depends_on"):
            try:
                values[target.id] = ast.literal_eval(value)
            except ValueError:
                return None
    revision = values.get("revision")
    down, depends = _names(values.get("down_revision")), _names(values.get("depends_on"))
    if not isinstance(revision, str) or down is None or depends is None:
        return None
    return ScriptHeader(revision, down, depends)


@cache
def script_headers() -> tuple[ScriptHeader, ...] | None:
    """Every script's header, or None when one is not literal (then only Alembic can tell)."""
    headers = []
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        header = _header(path.read_text(encoding="utf-8"))
        if header is None:
            return None
        headers.append(header)
    return tuple(headers)


def script_revisions() -> frozenset[str]:
    """Every revision the migration scripts define."""
    return frozenset(h.revision for h in script_headers() or ())


def script_dependencies() -> frozenset[str]:
    """Revisions another script ``depends_on``: Alembic records only the dependent one in
    ``alembic_version`` once both are applied (0021_policy depends on the results and validation heads)."""
    return frozenset(d for h in script_headers() or () for d in h.depends_on)


def script_heads() -> frozenset[str] | None:
    """The head revisions of the migration scripts (no script revises them); None when a script does not
    state ``revision``/``down_revision`` as literals (then Alembic decides)."""
    headers = script_headers()
    if headers is None:
        return None
    revised = {d for h in headers for d in h.down_revisions}
    return frozenset(h.revision for h in headers if h.revision not in revised) or None


def head_versions() -> frozenset[str] | None:
    """What ``alembic_version`` holds once every migration ran: the heads, less those depended on."""
    heads = script_heads()
    return None if heads is None else heads - script_dependencies()
