"""Installed model versions as values: what the registry (:mod:`radgate.models.registry`) hands out, without
the database.

The registry reads and writes ``model_versions`` through SQLAlchemy; this module holds what does not need a
session (the value an installed version is, the order versions are listed in, which bundled packages are
not registered yet), so that ``radgate models list`` can answer from a SQLite data directory read with
``sqlite3`` (:func:`radgate.services.models.list_installed`) and import neither SQLAlchemy nor the tables.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from radgate.models.manifest import VERSION_RE, Manifest
from radgate.models.package import ModelPackage

if TYPE_CHECKING:
    from radgate.models.tables import ModelVersion

__all__ = [
    "BUNDLED_MODELS",
    "COLUMNS",
    "InstalledModel",
    "newest_first",
    "unregistered_bundled",
    "version_key",
]

#: Packages shipped with radgate and registered by default when present.
BUNDLED_MODELS: tuple[Path, ...] = (
    Path(__file__).resolve().parent.parent / "data" / "models" / "demo-pneumothorax" / "1.0.0",
)

#: The ``model_versions`` columns an :class:`InstalledModel` is made of.
COLUMNS: tuple[str, ...] = (
    "id",
    "name",
    "version",
    "task",
    "description",
    "synthetic",
    "sha256",
    "path",
    "source",
    "registered_at",
    "registered_by",
    "manifest",
)


@dataclass(frozen=True)
class InstalledModel:
    """A registered model version, as the registry row and its parsed manifest."""

    id: int
    name: str
    version: str
    task: str
    description: str
    synthetic: bool
    sha256: str
    path: Path
    source: str
    registered_at: datetime
    registered_by: str
    manifest: Manifest

    @classmethod
    def from_row(cls, row: ModelVersion) -> InstalledModel:
        return cls.from_columns({name: getattr(row, name) for name in COLUMNS})

    @classmethod
    def from_columns(cls, values: Mapping[str, Any]) -> InstalledModel:
        """From the values of :data:`COLUMNS` as the column types hand them back (``registered_at`` aware)."""
        return cls(
            id=values["id"],
            name=values["name"],
            version=values["version"],
            task=values["task"],
            description=values["description"],
            synthetic=values["synthetic"],
            sha256=values["sha256"],
            path=Path(values["path"]),
            source=values["source"],
            registered_at=values["registered_at"],
            registered_by=values["registered_by"],
            manifest=Manifest.from_toml(values["manifest"]),
        )

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


def version_key(version: str) -> tuple[int, int, int, int, str]:
    match = VERSION_RE.match(version)
    if not match:
        return (0, 0, 0, 0, version)
    major, minor, patch, pre = match.groups()
    # A pre-release sorts before its release (SemVer 2.0.0, item 11).
    return (int(major), int(minor), int(patch), 0 if pre else 1, pre or "")


def newest_first(models: Iterable[InstalledModel]) -> list[InstalledModel]:
    """By name, then newest version first (the registry's listing order)."""
    ordered = sorted(models, key=lambda m: version_key(m.version), reverse=True)
    ordered.sort(key=lambda m: m.name)
    return ordered


def unregistered_bundled(
    registered: Collection[tuple[str, str]], bundled: Sequence[Path] = BUNDLED_MODELS
) -> list[ModelPackage]:
    """The bundled packages that exist and whose (name, version) is not in ``registered``."""
    missing = []
    for path in bundled:
        if not (path / "manifest.toml").is_file() and not (path.is_file() and path.suffix == ".zip"):
            continue
        package = ModelPackage.open(path)
        if (package.manifest.name, package.manifest.version) not in registered:
            missing.append(package)
    return missing
