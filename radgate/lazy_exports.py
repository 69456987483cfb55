"""A package's public names imported on first use (PEP 562 ``__getattr__``).

``radgate.db``, ``radgate.models`` and ``radgate.ingest`` name their classes and functions at the package
level, but importing them there would load SQLAlchemy, pydicom or numpy for every command that only needs
one light module of the package (``radgate series``, ``radgate models list``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """The ``__getattr__`` of ``package``: each name of ``homes`` is taken from its module (a full dotted
    name) when first asked for, then kept in the package's namespace."""

    def package_getattr(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        setattr(sys.modules[package], name, value)
        return value

    return package_getattr
